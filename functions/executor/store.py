"""DynamoDB adapter for the executor's order table (key: payment_order_id)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from functions.common import decided_index
from functions.common.clock import iso, utc_now
from functions.common.dynamo import is_condition_failure, items, plain, table
from functions.common.events import ExecuteOrder, OrderStatus
from functions.common.observability import METRICS_LOCK, logger, metrics
from functions.executor.domain import OrderExecution, target_status
from functions.psp.models import ChargeResult

# Sparse index for the recovery job, oldest first, in two buckets: orders not yet decided (EXECUTING or
# PENDING), and orders decided but not yet handed on. A decision moves an order from the first to the
# second in the same write; only a completed hand-on takes it off, so no crash can strand a decision.
OPEN_INDEX = "by_open"
OPEN_BUCKET = "OPEN"
HAND_ON_BUCKET = "HAND_ON"


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
                    "application_fee = :fee, #hold = :hold, currency = :currency, claimed_at = :now, "
                    "open_bucket = :open, open_since = if_not_exists(open_since, :now) ADD attempts :one"
                ),
                # New, NOT_STARTED, or EXECUTING after a crash: all may (re)charge with the same key.
                ConditionExpression="attribute_not_exists(#s) OR #s IN (:not_started, :executing)",
                ExpressionAttributeNames={"#s": "status", "#hold": "hold"},
                ExpressionAttributeValues={
                    ":executing": "EXECUTING",
                    ":not_started": "NOT_STARTED",
                    ":pid": order.payment_id,
                    ":seller": order.seller_id,
                    ":amount": order.amount,
                    ":fee": order.application_fee,
                    ":hold": order.hold,
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

    def decide(
        self, payment_order_id: str, *, expected: OrderStatus, result: ChargeResult, attempt: int | None = None
    ) -> OrderExecution:
        """`attempt`: decide only if that attempt still holds the order (the recovery sweep's decisions)."""
        now = _now()
        values: dict[str, Any] = {":expected": expected, ":status": target_status(result), ":now": now}
        sets = ["#s = :status", "decided_at = :now"]
        condition = "#s = :expected"
        if attempt is not None:
            condition += " AND attempts = :attempt"
            values[":attempt"] = attempt
        if target_status(result) == "SUCCEEDED":
            sets.append(f"{decided_index.ATTRIBUTE} = :shard")  # onto reconciliation's index
            values[":shard"] = decided_index.decided_shard(payment_order_id, now)
        elif target_status(result) == "FAILED":
            sets.append(f"{decided_index.FAILED_ATTRIBUTE} = :shard")  # onto the auditor's index
            values[":shard"] = decided_index.decided_shard(payment_order_id, now)
        if result.psp_reference is not None:
            sets.append("psp_reference = :ref")
            values[":ref"] = result.psp_reference
        if result.failure_code is not None:
            sets.append("failure_code = :code")
            values[":code"] = result.failure_code
        if target_status(result) in ("SUCCEEDED", "FAILED"):
            sets.append("open_bucket = :hand_on")  # decided: waits on the index until handed on
            values[":hand_on"] = HAND_ON_BUCKET
        return self._update_or_current(
            payment_order_id, update="SET " + ", ".join(sets), condition=condition, values=values
        )

    def mark_handed_on(self, payment_order_id: str) -> None:
        try:
            table(self.table_name).update_item(
                Key={"payment_order_id": payment_order_id},
                UpdateExpression="REMOVE open_bucket, open_since",
                ConditionExpression="open_bucket = :hand_on",
                ExpressionAttributeValues={":hand_on": HAND_ON_BUCKET},
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise  # a condition failure: taken off already (a redelivery, or the sweep)

    def record_orphan(self, payment_order_id: str, psp_reference: str) -> OrderExecution:
        """Record the orphan charge on a FAILED order, once. Counted (OrphanCharges, alarmed) and logged at
        error level at every sighting, before the write: a crash after the write cannot hide it, and the
        alarm holds while the PSP keeps telling us."""
        with METRICS_LOCK:  # the executor records on its batch threads
            metrics.add_metric(name="OrphanCharges", unit=MetricUnit.Count, value=1)
        logger.error(
            "orphan charge: the PSP charged an order we decided FAILED",
            extra={"payment_order_id": payment_order_id, "psp_reference": psp_reference},
        )
        return self._update_or_current(
            payment_order_id,
            update="SET orphan_psp_reference = :ref, orphaned_at = :now",
            condition="#s = :failed AND attribute_not_exists(orphan_psp_reference)",
            values={":ref": psp_reference, ":now": _now(), ":failed": "FAILED"},
        )

    def _update_or_current(
        self, payment_order_id: str, *, update: str, condition: str, values: dict[str, Any]
    ) -> OrderExecution:
        """Apply a conditional update and return the order as it now is; if the condition does not hold
        (another writer got there first), the order as that writer left it."""
        try:
            item = table(self.table_name).update_item(
                Key={"payment_order_id": payment_order_id},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            return self.get(payment_order_id)
        return self._execution(item)

    def open_orders(self, *, opened_before: str) -> list[OrderExecution]:
        """Orders still EXECUTING or PENDING that opened before the given ISO time, oldest first."""
        return self._indexed(OPEN_BUCKET, opened_before)

    def awaiting_hand_on(self, *, opened_before: str) -> list[OrderExecution]:
        """Orders decided but not known to be handed on, that opened before the given ISO time."""
        return self._indexed(HAND_ON_BUCKET, opened_before)

    def _indexed(self, bucket: str, opened_before: str) -> list[OrderExecution]:
        condition = Key("open_bucket").eq(bucket) & Key("open_since").lt(opened_before)
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
