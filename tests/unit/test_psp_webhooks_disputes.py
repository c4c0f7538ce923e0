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


def test_an_inquiry_that_withdraws_no_funds_is_no_notice() -> None:
    # Given the PSP opens an inquiry (Stripe: status warning_needs_response), which takes no money from us
    inquiry = dispute_notice("charge.dispute.created", _dispute(status="warning_needs_response"), ORDER)

    # Then nothing is reserved from the seller: its close (warning_closed) is no notice either, so a reserve
    # taken for it would never be given back; if it escalates, its won/lost close opens and closes it at once
    assert inquiry is None
    assert dispute_notice("charge.dispute.closed", _dispute(status="warning_closed"), ORDER) is None


def test_a_dispute_of_an_orphan_charge_moves_no_seller_money() -> None:
    # Given an order we decided FAILED, whose charge the PSP made all the same (an orphan charge): the seller
    # was never credited, and the charge never entered our books
    orphan = ORDER.model_copy(update={"status": "FAILED", "orphan_psp_reference": "ch_1"})

    # Then a dispute of that charge takes nothing from the seller (the notice would reserve amount + fee
    # from their wallet): like the orphan charge's refund, it is outside the seller's books
    assert dispute_notice("charge.dispute.created", _dispute(), orphan) is None
    assert dispute_notice("charge.dispute.closed", _dispute(status="lost"), orphan) is None
