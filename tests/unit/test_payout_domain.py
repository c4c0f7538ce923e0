"""Payout use cases with in-memory ports: the API's refusal, idempotent start, the daily run, the
pairing of a PSP verdict with the saga's parked task token, and the recovery sweep."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from functions.executor import payouts, recovery
from functions.executor.domain import OrderExecution
from functions.executor.psp import ChargeResult
from functions.payout import domain
from functions.payout.models import Payout, PayoutRequest, SagaInput


class Store:
    def __init__(self) -> None:
        self.items: dict[str, Payout] = {}

    def insert(self, payout: Payout) -> bool:
        if payout.payout_id in self.items:
            return False
        self.items[payout.payout_id] = payout
        return True

    def get(self, payout_id: str) -> Payout | None:
        return self.items.get(payout_id)


class Balances:
    def __init__(self, balances: dict[tuple[str, str], int]) -> None:
        self.balances = balances

    def available(self, seller_id: str, currency: str) -> int:
        return self.balances.get((seller_id, currency), 0)

    def balances_at_least(self, minimum: Callable[[str], int]) -> Iterator[tuple[str, str, int]]:
        for (seller, currency), amount in self.balances.items():
            if amount > 0 and amount >= minimum(currency):
                yield seller, currency, amount


class Saga:
    def __init__(self) -> None:
        self.started: list[SagaInput] = []

    def start(self, saga_input: SagaInput) -> None:
        self.started.append(saga_input)


def test_more_than_available_is_refused_before_anything_is_stored() -> None:
    store, saga = Store(), Saga()
    with pytest.raises(domain.InsufficientFunds) as refused:
        domain.request_payout(
            PayoutRequest(seller_id="s1", amount=501, currency="USD"),
            payout_id="payout_1",
            store=store,
            balances=Balances({("s1", "USD"): 500}),
            saga=saga,
        )
    assert (refused.value.status_code, refused.value.code, refused.value.param) == (422, "insufficient_funds", "amount")
    assert (store.items, saga.started) == ({}, [])


def test_a_retried_request_restarts_the_same_saga_and_stores_one_payout() -> None:
    store, saga = Store(), Saga()
    balances = Balances({("s1", "USD"): 500})
    request = PayoutRequest(seller_id="s1", amount=500, currency="USD")
    first = domain.request_payout(request, payout_id="payout_1", store=store, balances=balances, saga=saga)
    # the balance is reserved meanwhile; the retry must not be refused, nor create a second payout
    balances.balances[("s1", "USD")] = 0
    again = domain.request_payout(request, payout_id="payout_1", store=store, balances=balances, saga=saga)
    assert first == again
    assert len(store.items) == 1
    assert [s.payout_id for s in saga.started] == ["payout_1", "payout_1"]


def test_daily_run_pays_whole_balances_at_or_above_the_threshold_in_each_currencys_units() -> None:
    store, saga = Store(), Saga()
    balances = Balances({("a", "USD"): 10_000, ("b", "USD"): 9_999, ("c", "JPY"): 100, ("d", "KWD"): 99_999})
    started = domain.run_scheduled_payouts(
        threshold_major=100, day="2026-01-02", store=store, balances=balances, saga=saga
    )
    assert sorted((p.seller_id, p.amount, p.currency, p.trigger) for p in started) == [
        ("a", 10_000, "USD", "schedule"),
        ("c", 100, "JPY", "schedule"),
    ]
    again = domain.run_scheduled_payouts(
        threshold_major=100, day="2026-01-02", store=store, balances=balances, saga=saga
    )
    assert {p.payout_id for p in again} == {p.payout_id for p in started}
    assert len(store.items) == 2


class Records:
    def __init__(self) -> None:
        self.items: dict[str, payouts.PayoutRecord] = {}

    def _get(self, payout_id: str) -> payouts.PayoutRecord:
        return self.items.setdefault(payout_id, payouts.PayoutRecord(payout_id=payout_id))

    def submitted(self, payout_id: str, result: payouts.PayoutResult) -> payouts.PayoutRecord:
        record = self._get(payout_id)
        record.psp_reference = result.psp_reference
        return record.model_copy()

    def park_token(self, payout_id: str, task_token: str) -> payouts.PayoutRecord:
        record = self._get(payout_id)
        record.confirm_token = task_token
        return record.model_copy()

    def record_outcome(
        self, payout_id: str, outcome: Any, *, psp_reference: str | None, failure_code: str | None
    ) -> payouts.PayoutRecord:
        record = self._get(payout_id)
        if record.outcome is None:
            record.outcome, record.failure_code = outcome, failure_code
            record.psp_reference = record.psp_reference or psp_reference
        return record.model_copy()

    def mark_answered(self, payout_id: str, task_token: str) -> None:
        self._get(payout_id).answered_token = task_token


class Answers:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        self.sent.append((task_token, output))
        return True


@pytest.mark.parametrize("webhook_first", [True, False])
def test_the_verdict_and_the_parked_token_meet_once_whichever_comes_first(webhook_first: bool) -> None:
    records, answers = Records(), Answers()
    task = payouts.PayoutTask(action="await_confirmation", payout_id="payout_1", task_token="tok-2")

    def webhook(outcome: Any, code: str | None = None) -> None:
        payouts.confirm_payout(
            "payout_1", outcome, psp_reference="pout_1", failure_code=code, store=records, answers=answers
        )

    if webhook_first:
        webhook("paid")
        payouts.await_confirmation(task, store=records, answers=answers)
    else:
        payouts.await_confirmation(task, store=records, answers=answers)
        webhook("paid")
    webhook("paid")  # a duplicate
    webhook("failed", "account_closed")  # a late, contradicting event: the first verdict stands
    payouts.await_confirmation(task, store=records, answers=answers)  # a redelivered task message

    assert answers.sent == [("tok-2", {"outcome": "paid", "psp_reference": "pout_1", "failure_code": ""})]


class Publisher:
    def __init__(self) -> None:
        self.messages: list[BaseModel] = []

    def publish(self, message: BaseModel) -> None:
        self.messages.append(message)


class Orders:
    def __init__(self, executions: list[OrderExecution]) -> None:
        self.executions = {e.payment_order_id: e for e in executions}

    def open_orders(self, *, opened_before: str) -> list[OrderExecution]:
        return [
            e
            for e in self.executions.values()
            if e.status in ("EXECUTING", "PENDING") and (e.open_since or "") < opened_before
        ]

    def decide(self, payment_order_id: str, *, expected: Any, result: ChargeResult) -> OrderExecution:
        current = self.executions[payment_order_id]
        if current.status != expected:
            return current
        status = {"succeeded": "SUCCEEDED", "failed": "FAILED", "pending": "PENDING"}[result.status]
        updated = current.model_copy(
            update={"status": status, "psp_reference": result.psp_reference, "failure_code": result.failure_code}
        )
        self.executions[payment_order_id] = updated
        return updated


class Psp:
    def __init__(self, known: dict[str, ChargeResult]) -> None:
        self.known = known
        self.lookups: list[str] = []

    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None:
        self.lookups.append(idempotency_key)
        return self.known.get(idempotency_key)


def _order(po: str, status: Any, opened: datetime) -> OrderExecution:
    return OrderExecution(
        payment_order_id=po,
        payment_id="pay",
        seller_id="s",
        amount=100,
        currency="USD",
        status=status,
        open_since=opened.isoformat(),
    )


def test_sweep_settles_from_the_psp_record_fails_the_unknown_and_counts_the_stuck() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    orders = Orders(
        [
            _order("po_settled", "PENDING", now - timedelta(hours=1)),
            _order("po_never_sent", "EXECUTING", now - timedelta(hours=1)),
            _order("po_still_pending", "PENDING", now - timedelta(hours=5)),
            _order("po_recent", "EXECUTING", now - timedelta(minutes=5)),
        ]
    )
    psp = Psp(
        {
            "po_settled": ChargeResult("succeeded", "ch_1"),
            "po_still_pending": ChargeResult("pending", "ch_2"),
            "po_recent": ChargeResult("succeeded", "ch_3"),
        }
    )
    wallet, status = Publisher(), Publisher()

    report = recovery.recover_orders(
        now=now,
        resolve_after=timedelta(minutes=30),
        stuck_after=timedelta(hours=4),
        store=orders,
        psp=psp,
        wallet=wallet,
        order_status=status,
    )

    assert (report.examined, report.resolved, report.still_pending, report.stuck) == (
        3,
        {"SUCCEEDED": 1, "FAILED": 1},
        1,
        ["po_still_pending"],
    )
    assert sorted(psp.lookups) == ["po_never_sent", "po_settled", "po_still_pending"]
    assert orders.executions["po_never_sent"].failure_code == "psp_no_charge"
    assert orders.executions["po_recent"].status == "EXECUTING"  # too young: its worker may be alive
    assert [m.payment_order_id for m in wallet.messages] == ["po_settled"]  # type: ignore[attr-defined]
