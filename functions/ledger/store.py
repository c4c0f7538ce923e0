"""DynamoDB adapter for the ledger: one item per entry, written only with Put + attribute_not_exists.

The ledger function's IAM role has no UpdateItem/DeleteItem: append-only is enforced by IAM."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from functions.common.aws import client
from functions.common.dynamo import is_condition_failure, items, plain
from functions.ledger.domain import Entry

BY_ACCOUNT_INDEX = "by_account"
BY_PAYMENT_ORDER_INDEX = "by_payment_order"
_serialize = TypeSerializer().serialize


class DynamoLedgerStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def append(self, entries: Sequence[Entry]) -> bool:
        items = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {k: _serialize(v) for k, v in e.model_dump(exclude_none=True).items()},
                    "ConditionExpression": "attribute_not_exists(entry_id)",
                }
            }
            for e in entries
        ]
        try:
            client("dynamodb").transact_write_items(TransactItems=items)
        except ClientError as error:
            if is_condition_failure(error):
                return False  # the journal is already booked: ids are deterministic
            raise
        return True

    def _query(self, index: str, key: str, value: str) -> list[Entry]:
        found = items(self.table_name, IndexName=index, KeyConditionExpression=Key(key).eq(value))
        entries = [Entry.model_validate(plain(i)) for i in found]
        return sorted(entries, key=lambda e: (e.created_at, e.entry_id))

    def by_account(self, account: str) -> list[Entry]:
        return self._query(BY_ACCOUNT_INDEX, "account", account)

    def by_payment_order(self, payment_order_id: str) -> list[Entry]:
        return self._query(BY_PAYMENT_ORDER_INDEX, "payment_order_id", payment_order_id)

    def all_entries(self) -> Iterator[Entry]:
        for item in items(self.table_name, "scan", ConsistentRead=True):
            yield Entry.model_validate(plain(item))
