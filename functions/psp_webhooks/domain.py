"""PSP webhooks: at least once, in any order. Each verified event is deduplicated by its id and applied
through conditional transitions only, so a late or repeated event never moves a decided order or payout."""

from __future__ import annotations

from typing import Protocol

from functions.executor.domain import OrderExecution, Publisher, ResolutionStore, resolve_order
from functions.payout_executor.domain import PayoutExecutionStore, TaskAnswers, confirm_payout
from functions.psp.models import ChargeResult
from functions.psp_webhooks.models import Applied, PspEvent


class EventLog(Protocol):
    def is_done(self, event_id: str) -> bool: ...

    def mark_done(self, event_id: str, event_type: str) -> None: ...


class OrderFinder(ResolutionStore, Protocol):
    def find(self, payment_order_id: str) -> OrderExecution | None: ...


def apply_event(
    event: PspEvent,
    *,
    events: EventLog,
    orders: OrderFinder,
    wallet: Publisher,
    order_status: Publisher,
    payout_store: PayoutExecutionStore,
    answers: TaskAnswers,
) -> Applied:
    """Apply one verified event. Recorded as done only after its effects, which are idempotent: a crash in
    between means the PSP's retry applies it again, harmlessly."""
    if events.is_done(event.id):
        return "duplicate"
    obj = event.object
    outcome: Applied = "ignored"
    if event.type in ("charge.succeeded", "charge.failed") and obj.get("merchant_reference"):
        execution = orders.find(str(obj["merchant_reference"]))
        if execution is not None:
            result = ChargeResult(
                status="succeeded" if event.type == "charge.succeeded" else "failed",
                psp_reference=obj.get("id"),
                failure_code=obj.get("failure_code"),
            )
            resolve_order(execution, result, store=orders, wallet=wallet, order_status=order_status)
            outcome = "applied"
    elif event.type in ("payout.paid", "payout.failed") and obj.get("merchant_reference"):
        confirm_payout(
            str(obj["merchant_reference"]),
            "paid" if event.type == "payout.paid" else "failed",
            psp_reference=obj.get("id"),
            failure_code=obj.get("failure_code") or ("payout_failed" if event.type == "payout.failed" else None),
            store=payout_store,
            answers=answers,
        )
        outcome = "applied"
    # Anything else (payout.in_transit, charge.pending, unknown types) is acknowledged and ignored: it
    # cannot move a state forward, and a late one must not move it back.
    events.mark_done(event.id, event.type)
    return outcome
