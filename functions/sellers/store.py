"""The sellers table (pk seller_id, sk): the current payout account (sk ACCOUNT) and every version it had
(sk ACCOUNT#<version>, immutable), written together in one transaction."""

from __future__ import annotations

import uuid
from typing import Any

from boto3.dynamodb.types import Binary
from botocore.exceptions import ClientError

from functions.common.dynamo import cancellation_codes, is_condition_failure, plain, table
from functions.common.kms_sealer import KmsSecretSealer
from functions.sellers.domain import open_destination
from functions.sellers.models import BankAccount, PayoutAccount

PARTITION_KEY = "seller_id"
SORT_KEY = "sk"
CURRENT_ACCOUNT = "ACCOUNT"


def version_key(version: int) -> str:
    return f"{CURRENT_ACCOUNT}#{version:010d}"


def _account(item: dict[str, Any]) -> PayoutAccount:
    fields = plain({k: v for k, v in item.items() if k not in (SORT_KEY, "sealed_numbers")})
    sealed = item["sealed_numbers"]
    return PayoutAccount(**fields, sealed_numbers=bytes(sealed.value if isinstance(sealed, Binary) else sealed))


class DynamoSellerStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def _get(self, seller_id: str, sort_key: str) -> PayoutAccount | None:
        item = (
            table(self.table_name)
            .get_item(Key={PARTITION_KEY: seller_id, SORT_KEY: sort_key}, ConsistentRead=True)
            .get("Item")
        )
        return None if item is None else _account(item)

    def current(self, seller_id: str) -> PayoutAccount | None:
        return self._get(seller_id, CURRENT_ACCOUNT)

    def version(self, seller_id: str, version: int) -> PayoutAccount | None:
        return self._get(seller_id, version_key(version))

    def add_version(self, account: PayoutAccount, *, previous: int | None) -> bool:
        item = account.model_dump()
        current: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": {**item, SORT_KEY: CURRENT_ACCOUNT},
            "ConditionExpression": "attribute_not_exists(version)",
        }
        if previous is not None:
            current["ConditionExpression"] = "version = :previous"
            current["ExpressionAttributeValues"] = {":previous": previous}
        try:
            # The resource's client takes plain Python values (it serializes them like the Table does).
            table(self.table_name).meta.client.transact_write_items(
                # One token per attempt: botocore's own retry of a transaction that did commit is a no-op.
                ClientRequestToken=uuid.uuid4().hex,
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": {**item, SORT_KEY: version_key(account.version)},
                            "ConditionExpression": "attribute_not_exists(version)",
                        }
                    },
                    {"Put": current},
                ],
            )
        except ClientError as error:
            # Another PUT got there first (a condition failed), or DynamoDB cancelled this one because a
            # concurrent transaction held the same items: either way, read again and retry.
            if is_condition_failure(error) or "TransactionConflict" in cancellation_codes(error):
                return False
            raise
        return True


class SealedPayoutDestinations:
    """The payout executor's view of the sellers table: one account version, its numbers opened with KMS."""

    def __init__(self, table_name: str, key_arn: str) -> None:
        self.store = DynamoSellerStore(table_name)
        # Bank numbers are opened for one payout and not kept in the container's memory.
        self.sealer = KmsSecretSealer(key_arn, cache_seconds=0)

    def open(self, seller_id: str, version: int) -> BankAccount:
        return open_destination(seller_id, version, store=self.store, sealer=self.sealer)
