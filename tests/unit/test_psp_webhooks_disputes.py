"""The PSP's dispute events as notices for the disputes worker: the seller comes from our order, and an
event that cannot be about the order (other currency, more than was charged, no outcome) moves nothing."""

from __future__ import annotations

from typing import Any

import pytest

from functions.executor.domain import OrderExecution
from functions.psp_webhooks.disputes import dispute_notice

ORDER = OrderExecution(
    payment_order_id="po_9", payment_id="pay_9", seller_id="seller_9", amount=5000, currency="USD", status="SUCCEEDED"
)


def _dispute(**changes: Any) -> dict[str, Any]:
    return {
        "id": "dp_abc",
        "object": "dispute",
        "charge": "ch_1",
        "merchant_reference": "po_9",
        "amount": 5000,
        "fee": 1500,
        "currency": "USD",
        "reason": "fraudulent",
        "status": "needs_response",
        **changes,
    }


def test_created_and_closed_events_become_notices_for_the_orders_seller() -> None:
    opened = dispute_notice("charge.dispute.created", _dispute(), ORDER)
    won = dispute_notice("charge.dispute.closed", _dispute(status="won"), ORDER)
    lost = dispute_notice("charge.dispute.closed", _dispute(status="lost"), ORDER)

    assert opened is not None and won is not None and lost is not None
    assert opened.model_dump() == {
        "psp_dispute_id": "dp_abc",
        "payment_order_id": "po_9",
        "seller_id": "seller_9",
        "amount": 5000,
        "fee": 1500,
        "currency": "USD",
        "reason": "fraudulent",
        "outcome": "open",
    }
    assert (won.outcome, lost.outcome) == ("won", "lost")


@pytest.mark.parametrize(
    ("event_type", "changes"),
    [
        ("charge.dispute.closed", {"status": "warning_closed"}),
        ("charge.dispute.created", {"currency": "EUR"}),
        ("charge.dispute.created", {"amount": 5001}),
        ("charge.dispute.created", {"amount": "5000"}),
        ("charge.dispute.created", {"fee": -1}),
        ("charge.dispute.created", {"id": None}),
        ("charge.dispute.created", {"id": "dp with spaces"}),
    ],
)
def test_an_event_that_cannot_be_about_the_order_is_no_notice(event_type: str, changes: dict[str, Any]) -> None:
    assert dispute_notice(event_type, _dispute(**changes), ORDER) is None
