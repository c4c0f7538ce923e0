"""DynamoDB adapter for the payments table: one item per payment (orders inside), plus one
uniqueness-guard item per payment_order_id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from functions.common.aws import client
from functions.common.dynamo import cancellation_codes, is_condition_failure, plain, table
from functions.payment.models import Payment

PAYMENT_SK = "PAYMENT"


def payment_key(payment_id: str) -> dict[str, str]:
    return {"pk": f"PAYMENT#{payment_id}", "sk": PAYMENT_SK}


def order_guard_key(payment_order_id: str) -> dict[str, str]:
    return {"pk": f"ORDER#{payment_order_id}", "sk": "GUARD"}


class DynamoPaymentStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def reserve_order_ids(self, payment_id: str, payment_order_ids: Sequence[str]) -> str | None:
        # One transaction per 100 ids (the DynamoDB limit; the API allows at most 100 orders).
        for start in range(0, len(payment_order_ids), 100):
            chunk = list(payment_order_ids[start : start + 100])
            items = [
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {
                            **{k: {"S": v} for k, v in order_guard_key(po).items()},
                            "payment_id": {"S": payment_id},
                        },
                        # Re-reserving for the same payment is a harmless retry.
                        "ConditionExpression": "attribute_not_exists(pk) OR payment_id = :pid",
                        "ExpressionAttributeValues": {":pid": {"S": payment_id}},
                    }
                }
                for po in chunk
            ]
            try:
                client("dynamodb").transact_write_items(TransactItems=items)
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
                codes = cancellation_codes(error)
                return next(po for po, code in zip(chunk, codes, strict=False) if code == "ConditionalCheckFailed")
        return None

    def insert(self, payment: Payment) -> bool:
        try:
            table(self.table_name).put_item(Item=self._item(payment), ConditionExpression=Attr("pk").not_exists())
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def get(self, payment_id: str) -> Payment | None:
        item = table(self.table_name).get_item(Key=payment_key(payment_id), ConsistentRead=True).get("Item")
        return None if item is None else self.from_item(item)

    def replace(self, payment: Payment, expected_version: int) -> bool:
        try:
            table(self.table_name).put_item(
                Item=self._item(payment), ConditionExpression=Attr("version").eq(expected_version)
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    @staticmethod
    def _item(payment: Payment) -> dict[str, Any]:
        item = payment.model_dump(exclude_none=True)
        item["orders"] = [{k: v for k, v in o.items() if v is not None} for o in item["orders"]]
        return {**payment_key(payment.payment_id), "entity": "payment", **item}

    @staticmethod
    def from_item(item: dict[str, Any]) -> Payment:
        return Payment.model_validate({k: v for k, v in plain(item).items() if k not in ("pk", "sk", "entity")})
