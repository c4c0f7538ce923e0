"""Per-currency maximum amounts: eight digits of minor units in general, twelve for currencies whose minor
unit is worth little (IDR, VND, ...), enforced by the payment and payout requests, and the settlement file
and its fees handle the largest amount."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from functions.common.money import (
    CURRENCY_EXPONENTS,
    LARGEST_AMOUNT_MINOR,
    MAX_AMOUNT_MINOR,
    TWELVE_DIGIT_CURRENCIES,
    max_amount,
)
from functions.payment.models import PaymentRequest
from functions.payout.models import PayoutRequest
from functions.reconciliation.settlement_file import Malformed, Row, parse_block, parse_lines
from local_stack.psp.settlement import fee_for

IDR_MAX = 999_999_999_999


def payment(currency: str, *amounts: int) -> dict[str, object]:
    return {
        "checkout_id": "co_1",
        "buyer_id": "b_1",
        "currency": currency,
        "payment_method": "tok_visa",
        "orders": [{"payment_order_id": f"po_{i}", "seller_id": "s", "amount": a} for i, a in enumerate(amounts)],
    }


def test_a9_the_maximum_is_eight_digits_in_general_and_twelve_where_the_minor_unit_is_worth_little() -> None:
    assert (MAX_AMOUNT_MINOR, LARGEST_AMOUNT_MINOR) == (99_999_999, IDR_MAX)
    assert sorted(TWELVE_DIGIT_CURRENCIES) == ["HUF", "IDR", "KRW", "UGX", "VND"]
    assert {c: max_amount(c) for c in ("IDR", "VND", "KRW", "USD", "JPY", "KWD", "CLP")} == {
        "IDR": IDR_MAX,
        "VND": IDR_MAX,
        "KRW": IDR_MAX,
        "USD": 99_999_999,
        "JPY": 99_999_999,
        "KWD": 99_999_999,
        "CLP": 99_999_999,
    }
    assert all(max_amount(c) in (MAX_AMOUNT_MINOR, LARGEST_AMOUNT_MINOR) for c in CURRENCY_EXPONENTS)


def test_a9_an_idr_order_of_twelve_digits_is_accepted_and_one_more_is_refused() -> None:
    accepted = PaymentRequest.model_validate(payment("IDR", IDR_MAX, 1))
    assert [o.amount for o in accepted.orders] == [IDR_MAX, 1]
    with pytest.raises(ValidationError) as refused:
        PaymentRequest.model_validate(payment("IDR", 1, IDR_MAX + 1))
    assert [e["loc"] for e in refused.value.errors()] == [("orders", 1, "amount")]


def test_a9_a_usd_order_past_eight_digits_is_refused_and_names_the_order() -> None:
    assert PaymentRequest.model_validate(payment("USD", 99_999_999)).orders[0].amount == 99_999_999
    with pytest.raises(ValidationError) as refused:
        PaymentRequest.model_validate(payment("USD", 5, 100_000_000, 99_999_999, IDR_MAX))
    errors = refused.value.errors()
    assert [e["loc"] for e in errors] == [("orders", 1, "amount"), ("orders", 3, "amount")]
    assert errors[0]["msg"] == "Input should be at most 99999999 minor units in USD"


def test_a9_payouts_follow_the_same_per_currency_maximum() -> None:
    assert PayoutRequest(seller_id="s", amount=IDR_MAX, currency="VND").amount == IDR_MAX
    assert PayoutRequest(seller_id="s", amount=99_999_999, currency="EUR").amount == 99_999_999
    for amount, currency in ((100_000_000, "EUR"), (IDR_MAX + 1, "VND")):
        with pytest.raises(ValidationError) as refused:
            PayoutRequest(seller_id="s", amount=amount, currency=currency)
        assert [e["loc"] for e in refused.value.errors()] == [("amount",)]


def test_a9_the_settlement_file_takes_the_largest_amount_of_its_currency_only() -> None:
    fee = fee_for(IDR_MAX, "IDR")
    assert isinstance(fee, int) and fee == (IDR_MAX * 29 + 500) // 1000 + 30
    largest = f"ch_1,po_1,charge,{IDR_MAX},IDR,{fee},{IDR_MAX - fee},succeeded,2026-05-01T12:00:00Z,2026-05-03\n"
    too_large = "ch_2,po_2,charge,100000000,USD,0,100000000,succeeded,2026-05-01T12:00:00Z,2026-05-03\n"
    parsed = list(parse_lines(2, [largest, too_large]))
    assert isinstance(parsed[0], Row) and (parsed[0].amount, parsed[0].fee) == (IDR_MAX, fee)
    assert isinstance(parsed[1], Malformed) and parsed[1].reason == "amount out of range or negative fee/net"
    # The column-wise fast path agrees: the block with the USD row goes line by line
    columns = parse_block(2, [largest])
    assert columns is not None and columns.amounts == (IDR_MAX,)
    assert parse_block(2, [largest, too_large]) is None
