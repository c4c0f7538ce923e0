"""Order execution: claim the order, charge it once at the PSP, record the outcome, hand it on.

NOT_STARTED -> EXECUTING -> SUCCEEDED | FAILED | PENDING;  PENDING -> SUCCEEDED | FAILED.
Every transition is a conditional write on the expected current state. A decided order stays on the
recovery index until its hand-offs were sent; a redelivered message, or the recovery sweep, re-sends
them (the receivers are idempotent), so a crash between deciding and handing on loses nothing."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from functions.common.events import ExecuteOrder, Hold, OrderCharged, OrderStatus, OrderStatusChanged
from functions.psp.models import ChargeResult


class OrderExecution(BaseModel):
    payment_order_id: str
    payment_id: str
    seller_id: str
    amount: int
    application_fee: int = 0  # the marketplace's commission: credited to platform_revenue, not the seller
    hold: Hold = "none"  # where the seller's share lands: available, or pending until fulfilment
    currency: str
    status: OrderStatus
    psp_reference: str | None = None
    failure_code: str | None = None
    attempts: int = 0
    claimed_at: str | None = None  # when the current attempt claimed the order: its lease runs from here
    open_since: str | None = None  # set while on the recovery job's index (undecided, or not yet handed on)
    orphan_psp_reference: str | None = None  # a charge the PSP made although we decided the order FAILED
    orphaned_at: str | None = None


class ExecutionStore(Protocol):
    def claim(self, order: ExecuteOrder) -> OrderExecution:
        """Move the order NOT_STARTED/new -> EXECUTING (counting the attempt); return its state."""

    def decide(self, payment_order_id: str, *, expected: OrderStatus, result: ChargeResult) -> OrderExecution:
        """Move EXECUTING/PENDING -> the result's state; if already decided, return the stored state."""

    def mark_handed_on(self, payment_order_id: str) -> None:
        """Take a decided order off the recovery index: its hand-offs have been sent."""

    def record_orphan(self, payment_order_id: str, psp_reference: str) -> OrderExecution:
        """Record, once, the PSP's charge of an order decided FAILED; return the stored state."""


class Psp(Protocol):
    def charge(
        self, *, idempotency_key: str, amount: int, currency: str, payment_method: str, merchant_reference: str
    ) -> ChargeResult: ...

    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None: ...


class Publisher(Protocol):
    def publish(self, message: BaseModel) -> None: ...


# The failure the recovery sweep decides when the PSP has no charge for an order's idempotency key.
NO_CHARGE = "psp_no_charge"

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
        # The recovery sweep may have decided FAILED after this attempt's lease expired, and the charge landed.
        execution = keep_orphan_charge(execution, result, store=store)
    elif execution.failure_code == NO_CHARGE and execution.orphan_psp_reference is None:
        # The sweep failed the order for want of a charge; an attempt that died after charging (before it
        # could record the orphan) leaves only this redelivery to find the charge. Ask, never charge.
        found = psp.charge_by_idempotency_key(order.payment_order_id)
        if found is not None:
            execution = keep_orphan_charge(execution, found, store=store)
    hand_on(execution, wallet=wallet, order_status=order_status)
    if execution.status in ("SUCCEEDED", "FAILED"):
        store.mark_handed_on(order.payment_order_id)
    return execution


class OrphanStore(Protocol):
    def record_orphan(self, payment_order_id: str, psp_reference: str) -> OrderExecution:
        """Record, once, the PSP's charge of an order decided FAILED (counted and alarmed); return the state."""


def keep_orphan_charge(execution: OrderExecution, result: ChargeResult, *, store: OrphanStore) -> OrderExecution:
    """A charge the PSP made for an order we decided FAILED (an orphan charge) is never applied - no credit,
    no booking - and never dropped: it is recorded on the order for the refund that must follow."""
    if execution.status == "FAILED" and result.status == "succeeded" and result.psp_reference is not None:
        return store.record_orphan(execution.payment_order_id, result.psp_reference)
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
                application_fee=execution.application_fee,
                hold=execution.hold,
                currency=execution.currency,
                psp_reference=execution.psp_reference,
            )
        )


class ResolutionStore(OrphanStore, Protocol):
    def decide(
        self, payment_order_id: str, *, expected: OrderStatus, result: ChargeResult, attempt: int | None = None
    ) -> OrderExecution:
        """Decide if the order is still `expected` (and held by `attempt`, when given); else return its state."""

    def mark_handed_on(self, payment_order_id: str) -> None: ...


def resolve_order(
    execution: OrderExecution,
    result: ChargeResult,
    *,
    store: ResolutionStore,
    wallet: Publisher,
    order_status: Publisher,
    attempt: int | None = None,
) -> OrderExecution:
    """Settle an EXECUTING or PENDING order with the PSP's verdict (a webhook or a lookup, never a new
    charge). A terminal order stays as it is - late or duplicate verdicts are no-ops - but its hand-offs
    are re-sent (the receivers are idempotent) before it leaves the recovery index, so a crash after
    deciding strands nothing. A verdict that the PSP charged an order decided FAILED is an orphan charge."""
    if execution.status in ("EXECUTING", "PENDING") and result.status != "pending":
        execution = store.decide(execution.payment_order_id, expected=execution.status, result=result, attempt=attempt)
    execution = keep_orphan_charge(execution, result, store=store)
    if execution.status in ("SUCCEEDED", "FAILED"):
        hand_on(execution, wallet=wallet, order_status=order_status)
        store.mark_handed_on(execution.payment_order_id)
    return execution
