"""Adapters of the payout service: its own table (pk payout_id), wallet balances (read, and the payout-due
index's upkeep), and the Step Functions saga."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from functions.common.aws import client
from functions.common.dynamo import is_condition_failure, items, plain, table
from functions.common.money import CURRENCY_EXPONENTS
from functions.payout.models import Payout, SagaInput
from functions.wallet import keys


class DynamoPayoutStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def insert(self, payout: Payout) -> bool:
        try:
            table(self.table_name).put_item(
                Item=payout.model_dump(exclude_none=True), ConditionExpression=Attr("payout_id").not_exists()
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def get(self, payout_id: str) -> Payout | None:
        item = table(self.table_name).get_item(Key={"payout_id": payout_id}, ConsistentRead=True).get("Item")
        return None if item is None else Payout.model_validate(plain(item))


class WalletBalances:
    """Reads the wallet table in its owner's key layout (the saga, not this adapter, moves money in it)."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def available(self, seller_id: str, currency: str) -> int:
        item = (
            table(self.table_name)
            .get_item(
                Key={keys.PARTITION_KEY: seller_id, keys.SORT_KEY: keys.balance_key(currency)}, ConsistentRead=True
            )
            .get("Item")
        )
        return int(plain(item or {}).get("available", 0))

    def balances_at_least(self, minimum: Callable[[str], int]) -> Iterator[tuple[str, str, int]]:
        """Reads the sparse index of balances due a payout (functions/wallet/keys.py), one Query per accepted
        currency, never a Scan: the table holds a marker per order. A balance found empty leaves the index."""
        for currency in sorted(CURRENCY_EXPONENTS):
            due = items(
                self.table_name,
                IndexName=keys.PAYOUT_DUE_INDEX,
                KeyConditionExpression=Key(keys.PAYOUT_DUE_ATTRIBUTE).eq(currency),
                ProjectionExpression=f"{keys.PARTITION_KEY}, available",
            )
            for item in map(plain, due):
                seller_id, available = str(item[keys.PARTITION_KEY]), int(item.get("available", 0))
                if available <= 0:
                    self._leave_index(seller_id, currency)
                elif available >= minimum(currency):
                    yield seller_id, currency, available

    def _leave_index(self, seller_id: str, currency: str) -> None:
        # Conditional on the balance still being empty: a credit that raced in keeps the seller due.
        try:
            table(self.table_name).update_item(
                Key={keys.PARTITION_KEY: seller_id, keys.SORT_KEY: keys.balance_key(currency)},
                UpdateExpression="REMOVE #due",
                ConditionExpression="available <= :zero",
                ExpressionAttributeNames={"#due": keys.PAYOUT_DUE_ATTRIBUTE},
                ExpressionAttributeValues={":zero": 0},
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise


class StepFunctionsSaga:
    def __init__(self, state_machine_arn: str) -> None:
        self.state_machine_arn = state_machine_arn

    def start(self, saga_input: SagaInput) -> None:
        try:
            client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn,
                name=saga_input.payout_id,
                input=saga_input.model_dump_json(),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
