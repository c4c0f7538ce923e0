from __future__ import annotations

import pytest

from functions.common.clock import utc_now
from functions.common.events import ExecuteOrder, JournalPosting, OrderCharged
from functions.executor import domain as executor
from functions.ledger import domain as ledger
from functions.psp.models import ChargeResult
from tests.support.executions import MemoryExecutionStore
from tests.support.fakes import Recorder
from tests.support.ledger_balance import credit_balance


def test_charge_journal_is_balanced_with_deterministic_ids() -> None:
    charge = OrderCharged(
        payment_id="p", payment_order_id="po_1", seller_id="s", amount=999, currency="KWD", psp_reference="ch_1"
    )
    first = ledger.charge_journal(charge, created_at="t1")
    again = ledger.charge_journal(charge, created_at="t2")
    assert [e.entry_id for e in first] == [e.entry_id for e in again]
    assert [(e.account, e.direction, e.amount) for e in first] == [
        ("psp_receivable", "debit", 999),
        ("seller_payable:s", "credit", 999),
    ]
    assert ledger.trial_balance(first).balanced is True
    assert credit_balance(first[1:]) == {"KWD": 999}


def test_unbalanced_posting_is_refused() -> None:
    posting = JournalPosting(
        producer="p",
        kind="k",
        business_id="b",
        currency="USD",
        lines=[
            {"account": "a", "direction": "debit", "amount": 5},
            {"account": "b", "direction": "credit", "amount": 4},
        ],
    )
    with pytest.raises(ledger.UnbalancedJournal):
        ledger.posting_journal(posting, created_at="t")


def test_trial_balance_per_currency() -> None:
    entries = ledger.charge_journal(
        OrderCharged(payment_id="p", payment_order_id="po", seller_id="s", amount=5, currency="USD", psp_reference="c"),
        created_at="t",
    )
    tb = ledger.trial_balance(entries[:1])
    assert (tb.balanced, tb.currencies["USD"].debits, tb.currencies["USD"].credits) == (False, 5, 0)


class CountingPsp:
    def __init__(self, result: ChargeResult) -> None:
        self.result = result
        self.keys: list[str] = []

    def charge(self, *, idempotency_key: str, **_: object) -> ChargeResult:
        self.keys.append(idempotency_key)
        return self.result

    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None:
        self.keys.append(f"lookup:{idempotency_key}")
        return self.result if self.result.status != "failed" else None


ORDER = ExecuteOrder(
    payment_id="pay",
    payment_order_id="po_7",
    seller_id="s",
    buyer_id="b",
    amount=10,
    currency="USD",
    payment_method="tok_visa",
)


def test_executor_charges_with_the_order_id_as_key_and_hands_on_once_decided() -> None:
    store, psp, wallet, status = (
        MemoryExecutionStore(utc_now),
        CountingPsp(ChargeResult("succeeded", "ch_1")),
        Recorder(),
        Recorder(),
    )
    first = executor.execute_order(ORDER, store=store, psp=psp, wallet=wallet, order_status=status)
    again = executor.execute_order(ORDER, store=store, psp=psp, wallet=wallet, order_status=status)
    assert (first.status, again.status) == ("SUCCEEDED", "SUCCEEDED")
    assert psp.keys == ["po_7"]  # the redelivery did not charge again
    assert [type(m).__name__ for m in wallet.messages] == ["OrderCharged", "OrderCharged"]  # re-sent, idempotent


def test_declined_order_is_failed_and_never_reaches_the_wallet() -> None:
    store, psp = MemoryExecutionStore(utc_now), CountingPsp(ChargeResult("failed", "ch_2", "card_declined"))
    wallet, status = Recorder(), Recorder()
    result = executor.execute_order(ORDER, store=store, psp=psp, wallet=wallet, order_status=status)
    assert (result.status, result.failure_code) == ("FAILED", "card_declined")
    assert wallet.messages == []
    assert [m.model_dump()["status"] for m in status.messages] == ["FAILED"]


def test_a_redelivered_order_the_sweep_failed_finds_the_charge_a_dead_attempt_made_as_an_orphan() -> None:
    # Given an order the recovery sweep failed (no charge at the PSP then), while an attempt it thought dead
    # charged it and died before it could record the charge
    store = MemoryExecutionStore(utc_now)
    store.claim(ORDER)
    store.decide("po_7", expected="EXECUTING", result=ChargeResult("failed", None, executor.NO_CHARGE))
    psp, wallet, status = CountingPsp(ChargeResult("succeeded", "ch_late")), Recorder(), Recorder()

    # When its message is delivered again, twice
    for _ in range(2):
        execution = executor.execute_order(ORDER, store=store, psp=psp, wallet=wallet, order_status=status)

    # Then the PSP is asked (once: the orphan is recorded then), never charged, and the order stays FAILED
    # with the charge recorded for its refund; nothing credits the seller
    assert psp.keys == ["lookup:po_7"]
    assert (execution.status, execution.failure_code, execution.orphan_psp_reference) == (
        "FAILED",
        executor.NO_CHARGE,
        "ch_late",
    )
    assert wallet.messages == []
    assert [m.status for m in status.messages] == ["FAILED", "FAILED"]  # type: ignore[attr-defined]


def test_a_redelivered_order_the_sweep_failed_with_no_charge_anywhere_stays_failed() -> None:
    store = MemoryExecutionStore(utc_now)
    store.claim(ORDER)
    store.decide("po_7", expected="EXECUTING", result=ChargeResult("failed", None, executor.NO_CHARGE))
    psp = CountingPsp(ChargeResult("failed", None, "card_declined"))  # its lookup finds nothing

    execution = executor.execute_order(ORDER, store=store, psp=psp, wallet=Recorder(), order_status=Recorder())

    assert psp.keys == ["lookup:po_7"]
    assert (execution.status, execution.orphan_psp_reference) == ("FAILED", None)
