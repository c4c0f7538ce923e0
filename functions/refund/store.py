"""DynamoDB adapters of the refund service: its own refunds table, and read-only views of the pay-in
orders it refunds.

Refunds table (partition `pk`, sort `sk`):
  REFUND#<refund_id> / REFUND    one refund (functions.refund.models.Refund): every change of a refund's
                                 state is a conditional update of this item, so the table's stream carries
                                 each outcome (the dispatcher takes the INSERTs)
  CHARGE#<payment_order_id> / REFUNDS
                                 the refunded charge: `charged`, and `refunded`, the sum of its pending and
                                 succeeded refunds, moved only in the transactions that store or fail a refund"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from functions.common.aws import client
from functions.common.clock import iso, utc_now
from functions.common.dynamo import cancellation_codes, is_condition_failure, plain, table
from functions.executor.domain import OrderExecution
from functions.executor.store import DynamoExecutionStore
from functions.payment.store import order_guard_key
from functions.refund.domain import Reservation
from functions.refund.models import REFUNDS_BY_STATUS, ChargeRefunds, Refund

REFUND_SK = "REFUND"
CHARGE_SK = "REFUNDS"
_serialize = TypeSerializer().serialize
_CONDITION_FAILED = "ConditionalCheckFailed"


def refund_key(refund_id: str) -> dict[str, str]:
    return {"pk": f"REFUND#{refund_id}", "sk": REFUND_SK}


def charge_key(payment_order_id: str) -> dict[str, str]:
    return {"pk": f"CHARGE#{payment_order_id}", "sk": CHARGE_SK}


def _typed(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serialize(v) for k, v in item.items()}


def _now() -> str:
    return iso(utc_now())


class DynamoRefundStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def get(self, refund_id: str) -> Refund | None:
        item = table(self.table_name).get_item(Key=refund_key(refund_id), ConsistentRead=True).get("Item")
        return None if item is None else refund_from_item(item)

    def charge_refunds(self, payment_order_id: str) -> ChargeRefunds | None:
        item = table(self.table_name).get_item(Key=charge_key(payment_order_id), ConsistentRead=True).get("Item")
        return None if item is None else ChargeRefunds.model_validate(_fields(item))

    def reserve(self, refund: Refund, charge: ChargeRefunds) -> Reservation:
        refund_item = {**refund_key(refund.refund_id), "entity": "refund", **refund.model_dump(exclude_none=True)}
        try:
            client("dynamodb").transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": _typed(refund_item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Update": {"TableName": self.table_name, **_reservation_update(refund, charge)}},
                ]
            )
        except ClientError as error:
            codes = cancellation_codes(error)
            if not is_condition_failure(error):
                if "TransactionConflict" in codes:
                    return "contended"  # a concurrent refund's transaction held the charge's item
                raise
            return "exists" if codes and codes[0] == _CONDITION_FAILED else "exceeds"
        return "stored"

    def record_pending(self, refund_id: str, psp_refund_id: str | None) -> Refund:
        return self._transition(
            refund_id,
            sets={"psp_status": "pending"},
            psp_refund_id=psp_refund_id,
            condition="#s = :pending AND (attribute_not_exists(psp_status) OR psp_status = :psp_pending)",
            values={":pending": "PENDING", ":psp_pending": "pending"},
        )

    def succeed(self, refund_id: str, psp_refund_id: str | None) -> Refund:
        return self._transition(
            refund_id,
            sets={"#s": "SUCCEEDED", "psp_status": "succeeded", "debited": True},
            psp_refund_id=psp_refund_id,
            condition="#s = :pending",
            values={":pending": "PENDING"},
        )

    def fail(self, refund_id: str, failure_code: str, psp_refund_id: str | None, *, attempts: int = 10) -> Refund:
        for _ in range(attempts):
            refund = self.get(refund_id)
            if refund is None:
                raise LookupError(f"refund {refund_id} is not stored")
            if refund.status == "FAILED":
                return refund
            if self._fail_from(refund, failure_code, psp_refund_id):
                return refund.model_copy(
                    update={
                        "status": "FAILED",
                        "failure_code": failure_code,
                        "psp_status": "failed",
                        "psp_refund_id": psp_refund_id or refund.psp_refund_id,
                    }
                )
        raise RuntimeError(f"refund {refund_id} kept changing; the verdict will be retried")

    def _fail_from(self, refund: Refund, failure_code: str, psp_refund_id: str | None) -> bool:
        """FAILED from the state just read, and the refund's reservation released, in one transaction."""
        sets = "#s = :failed, failure_code = :code, psp_status = :psp_failed, updated_at = :now"
        values: dict[str, Any] = {
            ":failed": "FAILED",
            ":code": failure_code,
            ":psp_failed": "failed",
            ":now": _now(),
            ":expected": refund.status,
        }
        if psp_refund_id is not None:
            sets += ", psp_refund_id = :psp_id"
            values[":psp_id"] = psp_refund_id
        try:
            client("dynamodb").transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": _typed(refund_key(refund.refund_id)),
                            "UpdateExpression": "SET " + sets,
                            "ConditionExpression": "#s = :expected",
                            "ExpressionAttributeNames": {"#s": "status"},
                            "ExpressionAttributeValues": _typed(values),
                        }
                    },
                    {"Update": {"TableName": self.table_name, **_release_update(refund)}},
                ]
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            codes = cancellation_codes(error)
            if len(codes) > 1 and codes[1] == _CONDITION_FAILED:
                raise RuntimeError(f"the charge of refund {refund.refund_id} holds less than its amount") from error
            return False  # the refund moved meanwhile: read it again
        return True

    def pending_since(self, *, updated_before: str) -> list[Refund]:
        """The refunds still PENDING, last changed before `updated_before`, oldest first (the status index:
        only refund items have a status)."""
        query: dict[str, Any] = {
            "IndexName": REFUNDS_BY_STATUS,
            "KeyConditionExpression": "#s = :pending AND updated_at < :before",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":pending": "PENDING", ":before": updated_before},
        }
        found: list[Refund] = []
        while True:
            page = table(self.table_name).query(**query)
            found.extend(refund_from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def mark_sent_again(self, refund_id: str) -> Refund:
        return self._transition(
            refund_id,
            sets={},
            psp_refund_id=None,
            condition="#s = :pending AND attribute_not_exists(psp_status)",
            values={":pending": "PENDING"},
        )

    def _transition(
        self,
        refund_id: str,
        *,
        sets: dict[str, Any],
        psp_refund_id: str | None,
        condition: str,
        values: dict[str, Any],
    ) -> Refund:
        """A conditional update of the refund; if the condition does not hold, the refund as it now is."""
        assignments = dict(sets) | {"updated_at": _now()}
        if psp_refund_id is not None:
            assignments["psp_refund_id"] = psp_refund_id
        names = {"#s": "status"}
        expression = []
        for index, (name, value) in enumerate(assignments.items()):
            expression.append(f"{name} = :v{index}")
            values = {**values, f":v{index}": value}
        try:
            item = table(self.table_name).update_item(
                Key=refund_key(refund_id),
                UpdateExpression="SET " + ", ".join(expression),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            current = self.get(refund_id)
            if current is None:
                raise LookupError(f"refund {refund_id} is not stored") from error
            return current
        return refund_from_item(item)


def _reservation_update(refund: Refund, charge: ChargeRefunds) -> dict[str, Any]:
    """The charge item's part of storing a refund: add its amount to `refunded` within the charge and, if it
    gives back the commission, its amount and share to the fee totals. The limit is computed from the charge,
    which never changes, so the refunds stay within it however many requests race. A share was computed from
    the fee totals as read, so it is stored only if they have not moved since (else: read again, recompute)."""
    values: dict[str, Any] = {
        ":po": charge.payment_order_id,
        ":pid": charge.payment_id,
        ":seller": charge.seller_id,
        ":currency": charge.currency,
        ":charged": charge.charged,
        ":ref": charge.charge_reference,
        ":orphan": charge.orphan,
        ":fee": charge.application_fee,
        ":amount": refund.amount,
        ":limit": charge.charged - refund.amount,
    }
    adds = ["refunded :amount"]
    condition = "(attribute_not_exists(refunded) OR refunded <= :limit)"
    if refund.refund_application_fee:
        adds += ["fee_basis :amount", "fee_refunded :share"]
        values[":share"] = refund.application_fee_refunded
        if charge.application_fee:
            values |= {":basis_seen": charge.fee_basis, ":fee_seen": charge.fee_refunded}
            seen = "fee_basis = :basis_seen AND fee_refunded = :fee_seen"
            if charge.fee_basis == 0 and charge.fee_refunded == 0:
                seen = f"(attribute_not_exists(fee_basis) OR ({seen}))"
            condition += f" AND {seen}"
    return {
        "Key": _typed(charge_key(charge.payment_order_id)),
        "UpdateExpression": (
            "SET payment_order_id = :po, payment_id = :pid, seller_id = :seller, currency = :currency, "
            "charged = :charged, charge_reference = :ref, orphan = :orphan, application_fee = :fee "
            "ADD " + ", ".join(adds)
        ),
        "ConditionExpression": condition,
        "ExpressionAttributeValues": _typed(values),
    }


def _release_update(refund: Refund) -> dict[str, Any]:
    """The charge item's part of failing a refund: exactly what its reservation added, taken back."""
    values: dict[str, Any] = {":release": -refund.amount, ":amount": refund.amount}
    adds = ["refunded :release"]
    if refund.refund_application_fee:
        adds += ["fee_basis :release", "fee_refunded :share_release"]
        values[":share_release"] = -refund.application_fee_refunded
    return {
        "Key": _typed(charge_key(refund.payment_order_id)),
        "UpdateExpression": "ADD " + ", ".join(adds),
        "ConditionExpression": "refunded >= :amount",
        "ExpressionAttributeValues": _typed(values),
    }


def _fields(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in plain(item).items() if k not in ("pk", "sk", "entity")}


def refund_from_item(item: dict[str, Any]) -> Refund:
    """A refund from its item, as read or as a stream image (plain values either way)."""
    return Refund.model_validate(_fields(item))


class DynamoRefundedAmounts:
    """What the refunds hold of each order's charge, for the order view (read only)."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def refunded(self, payment_order_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(payment_order_ids), 100):
            keys: list[dict[str, Any]] = [_typed(charge_key(po)) for po in payment_order_ids[start : start + 100]]
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": keys,
                    "ProjectionExpression": "payment_order_id, refunded",
                    "ConsistentRead": True,
                }
            }
            while request:
                response = client("dynamodb").batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[item["payment_order_id"]["S"]] = int(item["refunded"]["N"])
                request = response.get("UnprocessedKeys") or {}
        return found


class DynamoChargedOrders:
    """The executor's orders and the payments' order-id guards, read only."""

    def __init__(self, executor_table: str, payments_table: str) -> None:
        self._executions = DynamoExecutionStore(executor_table)
        self.payments_table = payments_table

    def order(self, payment_order_id: str) -> OrderExecution | None:
        return self._executions.find(payment_order_id)

    def accepted(self, payment_order_id: str) -> bool:
        item = table(self.payments_table).get_item(Key=order_guard_key(payment_order_id), ConsistentRead=True)
        return "Item" in item
