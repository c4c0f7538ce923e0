"""Queue messages leave out fields at their default: a receiver that still runs the code from before a field
was added (its models refuse unknown fields) reads every message that does not use the new field, and a
current receiver reads the default back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from functions.common.events import ExecuteOrder, Message, OrderCharged
from functions.common.ids import ExternalId
from functions.common.money import AmountMinor, Currency
from functions.common.queues import message_body


class OrderChargedBeforeHolds(Message):
    """OrderCharged as the wallet read it before commissions and holds existed."""

    payment_id: str
    payment_order_id: ExternalId
    seller_id: ExternalId
    amount: AmountMinor
    currency: Currency
    psp_reference: str


def charged(**change: object) -> OrderCharged:
    fields: dict[str, object] = {
        "payment_id": "pay_1",
        "payment_order_id": "po_1",
        "seller_id": "s",
        "amount": 700,
        "currency": "EUR",
        "psp_reference": "ch_1",
    }
    return OrderCharged.model_validate(fields | change)


def test_a_message_at_its_defaults_is_read_by_the_model_from_before_the_fields_were_added() -> None:
    body = message_body(charged())
    assert body == (
        '{"amount":700,"payment_id":"pay_1","payment_order_id":"po_1","seller_id":"s","currency":"EUR",'
        '"psp_reference":"ch_1"}'
    )
    assert OrderChargedBeforeHolds.model_validate_json(body).amount == 700
    assert OrderCharged.model_validate_json(body) == charged()


def test_a_message_that_uses_a_new_field_carries_it_and_only_a_current_receiver_reads_it() -> None:
    held = charged(hold="until_fulfilled", application_fee=70)
    body = message_body(held)
    assert OrderCharged.model_validate_json(body) == held
    with pytest.raises(ValidationError):
        OrderChargedBeforeHolds.model_validate_json(body)


def test_every_field_set_away_from_its_default_is_sent() -> None:
    order = ExecuteOrder(
        payment_id="p",
        payment_order_id="po_1",
        seller_id="s",
        buyer_id="b",
        amount=5,
        application_fee=0,
        hold="none",
        currency="EUR",
        payment_method="tok_visa",
    )
    assert ExecuteOrder.model_validate_json(message_body(order)) == order
    assert "hold" not in message_body(order) and "application_fee" not in message_body(order)
