"""The payout provider's settlement file: a `payout` row for each paid payment (psp_reference its id,
merchant_reference its reference, fee 0, net = amount), closed by a summary row the rows sum to, with the
PSP file's header and injected differences; failed and still-submitted payments are not in it, and the
PSP's own file does not show the provider's payments."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.reconciliation.closing_balance import check_closing_balance
from functions.reconciliation.settlement_file import SETTLEMENT_COLUMNS
from local_stack.payout_provider.payments import Payment
from local_stack.psp.test_accounts import CLOSED_US_ACCOUNT, REFUSED_US_ACCOUNT, ROUTING_NUMBER, US_ACCOUNT
from tests.support.payout_provider import PSP_KEY, ProviderOnLoopback, fresh_provider, provider_on_loopback


@pytest.fixture(scope="module")
def servers() -> Iterator[ProviderOnLoopback]:
    with provider_on_loopback() as on_loopback:
        yield on_loopback


@dataclass(frozen=True)
class Day:
    stack: ProviderOnLoopback
    date: str
    paid: list[Payment]  # payout_1 (3000) and payout_2 (500)


def _payee(stack: ProviderOnLoopback, payee_id: str, number: str) -> None:
    body = {"name": "S", "country": "US", "currency": "USD", "account_number": number, "routing_number": ROUTING_NUMBER}
    assert stack.call("PUT", f"/payouts/v1/payees/{payee_id}", body)[0] == 200


def _pay(stack: ProviderOnLoopback, payee_id: str, reference: str, amount: int) -> tuple[int, Any]:
    body = {"payee_id": payee_id, "amount": amount, "currency": "USD", "reference": reference}
    return stack.call("POST", "/payouts/v1/payments", body, idempotency_key=reference)


@pytest.fixture
def day(servers: ProviderOnLoopback) -> Day:
    """Two paid payments, one failed with account_closed, one refused, and one still submitted."""
    stack = fresh_provider(servers, settle_delay=0.05)
    _payee(stack, "seller1v1", US_ACCOUNT)
    _payee(stack, "seller2v1", CLOSED_US_ACCOUNT)
    _payee(stack, "seller3v1", REFUSED_US_ACCOUNT)
    made = [_pay(stack, "seller1v1", "payout_1", 3_000), _pay(stack, "seller1v1", "payout_2", 500)]
    closed = _pay(stack, "seller2v1", "payout_3", 700)
    assert [status for status, _ in [*made, closed]] == [200, 200, 200]
    assert _pay(stack, "seller3v1", "payout_4", 900)[0] == 402
    paid = [stack.settled(body["id"]) for _, body in made]
    assert stack.settled(closed[1]["id"]).status == "failed"
    stack.provider.payments.settle_delay = 60
    assert _pay(stack, "seller1v1", "payout_5", 800)[1]["status"] == "submitted"
    assert [p.status for p in paid] == ["paid", "paid"]
    return Day(stack, datetime.fromtimestamp(paid[0].created, UTC).date().isoformat(), paid)


def _file(day: Day, date: str | None = None, **inject: str) -> dict[str, Any]:
    query = "&".join(f"{name}={value}" for name, value in {"date": date or day.date, **inject}.items())
    status, body = day.stack.call("GET", f"/payouts/v1/settlements?{query}")
    assert status == 200
    return dict(body)


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _row(payment: Payment, *, amount: int | None = None, status: str = "paid") -> list[str]:
    moment = datetime.fromtimestamp(payment.created, UTC)
    value = str(payment.amount if amount is None else amount)
    return [
        payment.id,
        payment.reference,
        "payout",
        value,
        "USD",
        "0",
        value,
        status,
        moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        (moment + timedelta(days=2)).date().isoformat(),
    ]


def _summary(day: str, net: int) -> list[str]:
    closing = (datetime.fromisoformat(day) + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00.000Z")
    return ["summary", day, "summary", str(net), "USD", "0", str(net), "closing", closing, ""]


def _in_file_order(payments: list[Payment]) -> list[Payment]:
    return sorted(payments, key=lambda p: (p.created, p.id))


def test_the_day_file_has_a_payout_row_for_each_paid_payment_only(day: Day) -> None:
    file = _file(day)
    assert (file["object"], file["filename"], file["rows"]) == (
        "settlement_file",
        f"payout-provider-settlement-{day.date}.csv",
        2,
    )
    assert _rows(file["csv"]) == [
        list(SETTLEMENT_COLUMNS),
        *[_row(p) for p in _in_file_order(day.paid)],
        _summary(day.date, -3_500),
    ]
    assert check_closing_balance(file["csv"].splitlines(keepends=True)) is None


def test_the_psps_file_does_not_show_the_providers_payments(day: Day) -> None:
    status, file = day.stack.call("GET", f"/v1/settlements?date={day.date}", key=PSP_KEY)
    assert status == 200
    payment_ids = {p.id for p in day.stack.provider.payments.find()}
    references = {p.reference for p in day.stack.provider.payments.find()}
    found = _rows(file["csv"])[1:]
    assert [r for r in found if r[0] in payment_ids or r[1] in references] == []


def test_an_empty_day_still_has_its_summary(day: Day) -> None:
    empty = "2001-02-03"
    assert _rows(_file(day, empty)["csv"]) == [list(SETTLEMENT_COLUMNS), _summary(empty, 0)]


def test_planted_differences(day: Day) -> None:
    first, second = (next(p for p in day.paid if p.reference == r) for r in ("payout_1", "payout_2"))
    body = _rows(_file(day, missing="payout_1", amount="payout_2", duplicate="payout_2")["csv"])[1:]
    assert body == [_row(second, amount=600), _row(second, amount=600), _summary(day.date, -1_200)]
    assert _rows(_file(day, status="payout_1")["csv"])[1:-1] == [
        _row(p, status="failed" if p is first else "paid") for p in _in_file_order(day.paid)
    ]


def test_an_extra_row_is_a_payout_nobody_asked_for(day: Day) -> None:
    rows = _rows(_file(day, extra="1")["csv"])
    extra = rows[-2]
    last_paid = _row(_in_file_order(day.paid)[-1])
    assert extra[0].startswith("pmt_") and extra[1].startswith("payout_unknown_")
    assert extra[2:] == ["payout", "4200", "USD", "0", "4200", "paid", last_paid[8], last_paid[9]]
    assert rows[-1] == _summary(day.date, -3_500 - 4_200)


def test_a_truncated_file_still_carries_the_summary_of_what_it_lost(day: Day) -> None:
    text = _file(day, truncate="1")["csv"]
    assert len(_rows(text)) == 3
    problem = check_closing_balance(text.splitlines(keepends=True))
    assert problem is not None and problem.reason == "balance_mismatch"


def test_a_late_payment_moves_to_the_next_days_file(day: Day) -> None:
    late = next(p for p in day.paid if p.reference == "payout_1")
    other = next(p for p in day.paid if p.reference == "payout_2")
    today = _rows(_file(day, late="payout_1")["csv"])[1:]
    next_day = (datetime.fromisoformat(day.date) + timedelta(days=1)).date().isoformat()
    tomorrow = _rows(_file(day, next_day)["csv"])[1:]
    assert today == [_row(other), _summary(day.date, -500)]
    booked = f"{next_day}T00:00:00.000Z"
    available = (datetime.fromisoformat(next_day) + timedelta(days=2)).date().isoformat()
    assert tomorrow == [[*_row(late)[:8], booked, available], _summary(next_day, -3_000)]


@pytest.mark.parametrize("query", ["date=2026-1-1", "since=yesterday", "extra=x"])
def test_a_bad_query_is_400(day: Day, query: str) -> None:
    status, body = day.stack.call("GET", f"/payouts/v1/settlements?{query}")
    assert (status, body["error"]["code"]) == (400, "parameter_invalid")


def test_a_payment_is_in_the_file_once_paid_not_before(servers: ProviderOnLoopback) -> None:
    stack = fresh_provider(servers, settle_delay=0.3)
    _payee(stack, "seller1v1", US_ACCOUNT)
    _, submitted = _pay(stack, "seller1v1", "payout_1", 3_000)
    date = datetime.fromtimestamp(submitted["created"], UTC).date().isoformat()
    before = stack.call("GET", f"/payouts/v1/settlements?date={date}")[1]
    paid = stack.settled(submitted["id"])
    after = stack.call("GET", f"/payouts/v1/settlements?date={date}")[1]
    assert _rows(before["csv"])[1:] == [_summary(date, 0)]
    assert _rows(after["csv"])[1:] == [_row(paid), _summary(date, -3_000)]
