"""PSP webhooks: at least once, in any order. Each verified event is deduplicated by its id and applied
through conditional transitions only, so a late or repeated event never moves a decided order or refund.
Payouts are the payout provider's, with webhooks of their own (functions/payout_webhooks/)."""

from __future__ import annotations

import re
from typing import Any, Protocol

from functions.executor.domain import OrderExecution, Publisher, ResolutionStore, resolve_order
from functions.psp.models import ChargeResult, RefundResult
from functions.psp_webhooks.disputes import DISPUTE_EVENTS, dispute_notice
from functions.psp_webhooks.models import Applied, PspEvent
from functions.refund.verdicts import REFUND_EVENTS, verdict_of

# The ids we give a payment service as a reference (order, refund and payout ids). Anything else in an event
# cannot name one of ours, and would not fit a DynamoDB key: such an event is acknowledged and ignored.
_OUR_REFERENCE = re.compile(r"[A-Za-z0-9_-]{1,80}")


def our_reference(value: Any) -> str | None:
    return value if isinstance(value, str) and _OUR_REFERENCE.fullmatch(value) else None


def text_or_none(value: Any) -> str | None:
    """An optional text field of the PSP's object: a non-empty string, or absent (never another type)."""
    return value if isinstance(value, str) and value else None


class EventLog(Protocol):
    def is_done(self, event_id: str) -> bool: ...

    def mark_done(self, event_id: str, event_type: str) -> None: ...


class OrderFinder(ResolutionStore, Protocol):
    def find(self, payment_order_id: str) -> OrderExecution | None: ...


class RefundSettler(Protocol):
    def settle(self, refund_id: str, verdict: RefundResult) -> bool:
        """Apply the PSP's verdict to our refund (functions/refund/verdicts.py); False if it is not ours."""


def apply_event(
    event: PspEvent,
    *,
    events: EventLog,
    orders: OrderFinder,
    wallet: Publisher,
    order_status: Publisher,
    disputes: Publisher,
    refunds: RefundSettler,
) -> Applied:
    """Apply one verified event. Recorded as done only after its effects, which are idempotent: a crash in
    between means the PSP's retry applies it again, harmlessly."""
    if events.is_done(event.id):
        return "duplicate"
    obj = event.object
    reference = our_reference(obj.get("merchant_reference"))
    outcome: Applied = "ignored"
    if event.type in ("charge.succeeded", "charge.failed") and reference is not None:
        execution = orders.find(reference)
        if execution is not None:
            result = ChargeResult(
                status="succeeded" if event.type == "charge.succeeded" else "failed",
                psp_reference=text_or_none(obj.get("id")),
                failure_code=text_or_none(obj.get("failure_code")),
            )
            resolve_order(execution, result, store=orders, wallet=wallet, order_status=order_status)
            outcome = "applied"
    elif event.type in DISPUTE_EVENTS and reference is not None:
        # Handed to the disputes worker, which applies each notice once in whatever order they come.
        disputed = orders.find(reference)
        notice = dispute_notice(event.type, obj, disputed) if disputed is not None else None
        if notice is not None:
            disputes.publish(notice)
            outcome = "applied"
    elif event.type in REFUND_EVENTS and reference is not None:
        verdict = verdict_of(event.type, obj)
        if verdict is not None and refunds.settle(reference, verdict):
            outcome = "applied"
    # Anything else (charge.pending, unknown types) is acknowledged and ignored: it
    # cannot move a state forward, and a late one must not move it back.
    events.mark_done(event.id, event.type)
    return outcome
