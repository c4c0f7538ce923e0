"""DynamoDB adapter for the executor's order table (key: payment_order_id)."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from functions.common import decided_index
from functions.common.clock import iso, utc_now
from functions.common.dynamo import is_condition_failure, items, plain, table
from functions.common.events import ExecuteOrder, OrderStatus
from functions.executor.domain import OrderExecution, target_status
from functions.psp.models import ChargeResult

# Sparse index of orders not yet decided (EXECUTING or PENDING), oldest first, for the recovery job.
OPEN_INDEX = "by_open"
OPEN_BUCKET = "OPEN"


def _now() -> str:
    return iso(utc_now())


class DynamoExecutionStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def claim(self, order: ExecuteOrder) -> OrderExecution:
        try:
            item = table(self.table_name).update_item(
                Key={"payment_order_id": order.payment_order_id},
                UpdateExpression=(
                    "SET #s = :executing, payment_id = :pid, seller_id = :seller, amount = :amount, "
                    "currency = :currency, claimed_at = :now, open_bucket = :open, "
                    "open_since = if_not_exists(open_since, :now) ADD attempts :one"
                ),
                # New, NOT_STARTED, or EXECUTING after a crash: all may (re)charge with the same key.
                ConditionExpression="attribute_not_exists(#s) OR #s IN (:not_started, :executing)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":executing": "EXECUTING",
                    ":not_started": "NOT_STARTED",
                    ":pid": order.payment_id,
                    ":seller": order.seller_id,
                    ":amount": order.amount,
                    ":currency": order.currency,
                    ":now": _now(),
                    ":one": 1,
                    ":open": OPEN_BUCKET,
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            return self.get(order.payment_order_id)
        return self._execution(item)

    def decide(self, payment_order_id: str, *, expected: OrderStatus, result: ChargeResult) -> OrderExecution:
        now = _now()
        values: dict[str, Any] = {":expected": expected, ":status": target_status(result), ":now": now}
        sets = ["#s = :status", "decided_at = :now"]
        if target_status(result) == "SUCCEEDED":
            sets.append(f"{decided_index.ATTRIBUTE} = :shard")  # onto reconciliation's index
            values[":shard"] = decided_index.decided_shard(payment_order_id, now)
        if result.psp_reference is not None:
            sets.append("psp_reference = :ref")
            values[":ref"] = result.psp_reference
        if result.failure_code is not None:
            sets.append("failure_code = :code")
            values[":code"] = result.failure_code
        expression = "SET " + ", ".join(sets)
        if target_status(result) in ("SUCCEEDED", "FAILED"):
            expression += " REMOVE open_bucket, open_since"  # decided: off the recovery job's index
        try:
            item = table(self.table_name).update_item(
                Key={"payment_order_id": payment_order_id},
                UpdateExpression=expression,
                ConditionExpression="#s = :expected",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            return self.get(payment_order_id)
        return self._execution(item)

    def record_orphan_charge(self, payment_order_id: str, psp_reference: str) -> bool:
        """Add the PSP's charge to the order's `orphan_charges` (a set: a charge is kept once), with when it
        was first seen; False if it was there already."""
        try:
            table(self.table_name).update_item(
                Key={"payment_order_id": payment_order_id},
                UpdateExpression="ADD orphan_charges :charge SET orphan_seen_at = if_not_exists(orphan_seen_at, :now)",
                ConditionExpression="attribute_exists(payment_order_id) AND NOT contains(orphan_charges, :reference)",
                ExpressionAttributeValues={":charge": {psp_reference}, ":reference": psp_reference, ":now": _now()},
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            return False
        return True

    def open_orders(self, *, opened_before: str) -> list[OrderExecution]:
        """Orders still EXECUTING or PENDING that opened before the given ISO time, oldest first."""
        condition = Key("open_bucket").eq(OPEN_BUCKET) & Key("open_since").lt(opened_before)
        return [
            self._execution(item)
            for item in items(self.table_name, IndexName=OPEN_INDEX, KeyConditionExpression=condition)
        ]

    def find(self, payment_order_id: str) -> OrderExecution | None:
        item = (
            table(self.table_name).get_item(Key={"payment_order_id": payment_order_id}, ConsistentRead=True).get("Item")
        )
        return None if item is None else self._execution(item)

    def get(self, payment_order_id: str) -> OrderExecution:
        item = table(self.table_name).get_item(Key={"payment_order_id": payment_order_id}, ConsistentRead=True)["Item"]
        return self._execution(item)

    @staticmethod
    def _execution(item: dict[str, Any]) -> OrderExecution:
        return OrderExecution.model_validate(plain(item), from_attributes=False)
