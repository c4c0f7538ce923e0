"""The PSP's dispute events (`charge.dispute.created`, `charge.dispute.closed`) as notices for the disputes
worker. The event's object is the PSP's dispute: `id`, `charge`, `merchant_reference` (our order),
`amount`, `fee`, `currency`, `reason`, and `status` (`won` or `lost` once closed).

A dispute names an order of ours and cannot take back more than was charged, in another currency: an event
that breaks that is acknowledged and ignored (it cannot move money), and logged by the receiver. So is an
inquiry (`warning_*` statuses): the PSP takes no money for it, and its close (`warning_closed`) gives none
back; should it escalate, its won/lost close opens and closes the dispute in one notice. And so is a dispute
of an orphan charge (the order FAILED): the seller was never credited and the charge never entered our
books, so, like that charge's refund, it moves no seller money (its settlement row is a break to review)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from functions.disputes.models import DisputeNotice, Outcome
from functions.executor.domain import OrderExecution

DISPUTE_CREATED = "charge.dispute.created"
DISPUTE_CLOSED = "charge.dispute.closed"
DISPUTE_EVENTS = frozenset({DISPUTE_CREATED, DISPUTE_CLOSED})


def _outcome(event_type: str, status: Any) -> Outcome | None:
    if event_type == DISPUTE_CREATED:
        return None if str(status).startswith("warning_") else "open"
    return status if status in ("won", "lost") else None


def dispute_notice(event_type: str, obj: dict[str, Any], order: OrderExecution) -> DisputeNotice | None:
    """The notice for the disputes worker, or None if the event cannot be one about this order."""
    outcome = _outcome(event_type, obj.get("status"))
    if outcome is None or order.status == "FAILED":
        return None
    try:
        notice = DisputeNotice(
            psp_dispute_id=obj.get("id"),
            payment_order_id=order.payment_order_id,
            seller_id=order.seller_id,
            amount=obj.get("amount"),
            fee=obj.get("fee", 0),
            currency=obj.get("currency"),
            reason=obj.get("reason") or "general",
            outcome=outcome,
        )
    except ValidationError:
        return None
    if notice.currency != order.currency or notice.amount > order.amount:
        return None
    return notice
