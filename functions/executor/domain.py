"""Order execution: claim the order, charge it once at the PSP, record the outcome, hand it on.

NOT_STARTED -> EXECUTING -> SUCCEEDED | FAILED | PENDING;  PENDING -> SUCCEEDED | FAILED.
Every transition is a conditional write on the expected current state. A redelivered message
re-sends the hand-offs for an order already decided (the receivers are idempotent), so a crash
between deciding and handing on loses nothing."""

from __future__ import annotations

from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel

from functions.common.events import ExecuteOrder, OrderCharged, OrderStatus, OrderStatusChanged
from functions.common.observability import logger, metrics
from functions.psp.models import ChargeResult


class OrderExecution(BaseModel):
    payment_order_id: str
    payment_id: str
    seller_id: str
    amount: int
    currency: str
    status: OrderStatus
    psp_reference: str | None = None
    failure_code: str | None = None
    attempts: int = 0
    open_since: str | None = None  # set while EXECUTING or PENDING (the recovery job's index)


class ExecutionStore(Protocol):
    def claim(self, order: ExecuteOrder) -> OrderExecution:
        """Move the order NOT_STARTED/new -> EXECUTING (counting the attempt); return its state."""

    def decide(self, payment_order_id: str, *, expected: OrderStatus, result: ChargeResult) -> OrderExecution:
        """Move EXECUTING/PENDING -> the result's state; if already decided, return the stored state."""


class Psp(Protocol):
    def charge(
        self, *, idempotency_key: str, amount: int, currency: str, payment_method: str, merchant_reference: str
    ) -> ChargeResult: ...


class Publisher(Protocol):
    def publish(self, message: BaseModel) -> None: ...


_RESULT_STATUS: dict[str, OrderStatus] = {"succeeded": "SUCCEEDED", "failed": "FAILED", "pending": "PENDING"}


def target_status(result: ChargeResult) -> OrderStatus:
    return _RESULT_STATUS[result.status]


def execute_order(
    order: ExecuteOrder, *, store: ExecutionStore, psp: Psp, wallet: Publisher, order_status: Publisher
) -> OrderExecution:
    execution = store.claim(order)
    if execution.status == "EXECUTING":
        # Also the path after a crash mid-charge: the same idempotency key returns the same charge.
        result = psp.charge(
            idempotency_key=order.payment_order_id,
            amount=order.amount,
            currency=order.currency,
            payment_method=order.payment_method,
            merchant_reference=order.payment_order_id,
        )
        execution = store.decide(order.payment_order_id, expected="EXECUTING", result=result)
    hand_on(execution, wallet=wallet, order_status=order_status)
    return execution


def hand_on(execution: OrderExecution, *, wallet: Publisher, order_status: Publisher) -> None:
    """Tell the payment service the order's state and, once charged, the wallet to credit it."""
    order_status.publish(
        OrderStatusChanged(
            payment_id=execution.payment_id,
            payment_order_id=execution.payment_order_id,
            status=execution.status,
            psp_reference=execution.psp_reference,
            failure_code=execution.failure_code,
        )
    )
    if execution.status == "SUCCEEDED" and execution.psp_reference is not None:
        wallet.publish(
            OrderCharged(
                payment_id=execution.payment_id,
                payment_order_id=execution.payment_order_id,
                seller_id=execution.seller_id,
                amount=execution.amount,
                currency=execution.currency,
                psp_reference=execution.psp_reference,
            )
        )


class ResolutionStore(Protocol):
    def decide(self, payment_order_id: str, *, expected: OrderStatus, result: ChargeResult) -> OrderExecution: ...

    def record_orphan_charge(self, payment_order_id: str, psp_reference: str) -> bool:
        """Keep the PSP's charge on the order (durably, once); False if it was recorded before."""


def resolve_order(
    execution: OrderExecution,
    result: ChargeResult,
    *,
    store: ResolutionStore,
    wallet: Publisher,
    order_status: Publisher,
) -> OrderExecution:
    """Settle an EXECUTING or PENDING order with the PSP's verdict (a webhook or a lookup, never a new
    charge). A terminal order stays as it is - late or duplicate verdicts are no-ops - but its hand-offs
    are re-sent (the receivers are idempotent), so a crash after deciding strands nothing. A verdict that
    the PSP charged an order decided FAILED is an orphan charge: never applied, always recorded."""
    if execution.status in ("EXECUTING", "PENDING") and result.status != "pending":
        execution = store.decide(execution.payment_order_id, expected=execution.status, result=result)
    if execution.status in ("SUCCEEDED", "FAILED"):
        hand_on(execution, wallet=wallet, order_status=order_status)
    if execution.status == "FAILED" and result.status == "succeeded" and result.psp_reference is not None:
        record_orphan_charge(execution, result.psp_reference, store=store)
    return execution


def record_orphan_charge(execution: OrderExecution, psp_reference: str, *, store: ResolutionStore) -> None:
    """The PSP holds the buyer's money for an order we decided FAILED (and told the payment so): record the
    charge on the order for the refund that must follow, count it (OrphanCharges, alarmed) and log it at
    error level. Counted at every sighting, so a crash before the metric is flushed cannot hide it."""
    first = store.record_orphan_charge(execution.payment_order_id, psp_reference)
    metrics.add_metric(name="OrphanCharges", unit=MetricUnit.Count, value=1)
    logger.error(
        "orphan charge: the PSP charged an order we decided FAILED",
        extra={
            "payment_order_id": execution.payment_order_id,
            "payment_id": execution.payment_id,
            "psp_reference": psp_reference,
            "amount": execution.amount,
            "currency": execution.currency,
            "first_seen": first,
        },
    )
