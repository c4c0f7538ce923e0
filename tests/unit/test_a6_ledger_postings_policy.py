"""Issue 11 A6 (domain): the postings queue books only what each producer may post, and a journal id
that comes again with other content is a conflict, never a silent repeat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from functions.common.backoff import TransientError
from functions.common.events import JournalPosting, OrderCharged
from functions.common.ids import deterministic_id
from functions.ledger import domain as ledger
from functions.ledger.policy import PostingRefused, check_posting
from functions.reconciliation.journal import settlement_journal


class MemoryLedger:
    """Appends like the DynamoDB store (all or nothing, each entry only if absent) and reads back by id."""

    def __init__(self) -> None:
        self.entries: dict[str, ledger.Entry] = {}

    def append(self, entries: Sequence[ledger.Entry]) -> bool:
        if any(e.entry_id in self.entries for e in entries):
            return False
        self.entries.update({e.entry_id: e for e in entries})
        return True

    def by_account(self, account: str) -> list[ledger.Entry]:
        return [e for e in self.entries.values() if e.account == account]

    def by_payment_order(self, payment_order_id: str) -> list[ledger.Entry]:
        return [e for e in self.entries.values() if e.payment_order_id == payment_order_id]

    def all_entries(self) -> list[ledger.Entry]:
        return list(self.entries.values())

    def read(self, entry_ids: Sequence[str]) -> list[ledger.Entry]:
        return [self.entries[i] for i in entry_ids if i in self.entries]


class Reader:
    def __init__(self, store: MemoryLedger) -> None:
        self.store = store

    def entries(self, entry_ids: Sequence[str]) -> list[ledger.Entry]:
        return self.store.read(entry_ids)


class Published:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def publish(self, message: Any) -> None:
        self.messages.append(message)


def payout_posting(kind: str, debit: str, credit: str, *, amount: int = 500, **changes: Any) -> JournalPosting:
    """A posting as the payout saga sends it (infra/constructs/payout_saga.py)."""
    body: dict[str, Any] = {
        "producer": "payouts",
        "kind": kind,
        "business_id": "payout_1",
        "currency": "USD",
        "reference": "payout_1",
        "lines": [
            {"account": debit, "direction": "debit", "amount": amount},
            {"account": credit, "direction": "credit", "amount": amount},
        ],
    }
    return JournalPosting.model_validate(body | changes)


def settlement(gross: int = 1000, fees: int = 30) -> JournalPosting:
    posting = settlement_journal("rr_run1", 1, "USD", gross, fees)
    assert posting is not None
    return posting


LEGITIMATE = {
    "in transit": payout_posting("payout_in_transit", "seller_payable:s_1", "payout_in_transit:s_1"),
    "cash out": payout_posting("payout_cash_out", "payout_in_transit:s_1", "psp_receivable"),
    "reversal": payout_posting("payout_reversal", "payout_in_transit:s_1", "seller_payable:s_1"),
    "settlement": settlement(),
    "settlement without fees": settlement(fees=0),
    "settlement all fees": settlement(gross=30, fees=30),
}


@pytest.mark.parametrize("posting", LEGITIMATE.values(), ids=LEGITIMATE.keys())
def test_a6_every_producer_may_post_its_own_kinds(posting: JournalPosting) -> None:
    store = MemoryLedger()
    check_posting(posting)
    assert ledger.book_posting(posting, store=store, journals=Reader(store)) is True
    assert len(store.entries) == len(posting.lines)


def _with(posting: JournalPosting, **changes: Any) -> JournalPosting:
    return JournalPosting.model_validate(posting.model_dump() | changes)


REFUSED = {
    # A charge for a future order would take over that order's journal id.
    "charge kind": payout_posting(
        "charge", "psp_receivable", "seller_payable:s_1", business_id="po_future", reference=None
    ),
    "unknown kind": payout_posting("adjustment", "seller_payable:s_1", "payout_in_transit:s_1"),
    "kind of another producer": _with(LEGITIMATE["settlement"], producer="payouts"),
    "unknown producer": _with(LEGITIMATE["in transit"], producer="wallet"),
    "seller payable in a settlement": _with(
        LEGITIMATE["settlement"],
        lines=[
            {"account": "bank_cash", "direction": "debit", "amount": 1000},
            {"account": "seller_payable:s_1", "direction": "credit", "amount": 1000},
        ],
    ),
    "two sellers in one payout": payout_posting("payout_in_transit", "seller_payable:s_1", "payout_in_transit:s_2"),
    "sides swapped": payout_posting("payout_in_transit", "payout_in_transit:s_1", "seller_payable:s_1").model_copy(),
    "an extra line": _with(
        LEGITIMATE["reversal"],
        lines=[
            {"account": "payout_in_transit:s_1", "direction": "debit", "amount": 500},
            {"account": "seller_payable:s_1", "direction": "credit", "amount": 400},
            {"account": "seller_payable:s_1", "direction": "credit", "amount": 100},
        ],
    ),
    "a missing credit": _with(
        LEGITIMATE["settlement"], lines=[{"account": "bank_cash", "direction": "debit", "amount": 1000}]
    ),
    "booked against an order": _with(LEGITIMATE["cash out"], payment_order_id="po_1"),
    "payout reference is not its id": _with(LEGITIMATE["in transit"], reference="payout_2"),
    "settlement id names another currency": _with(LEGITIMATE["settlement"], business_id="rr_run1:1:EUR"),
    "settlement reference is not its run": _with(LEGITIMATE["settlement"], reference="rr_other"),
    "settlement id is not a run chunk": _with(LEGITIMATE["settlement"], business_id="po_1"),
    "seller name with a separator": payout_posting(
        "payout_in_transit", "seller_payable:s_1:x", "payout_in_transit:s_1:x"
    ),
}


@pytest.mark.parametrize("posting", REFUSED.values(), ids=REFUSED.keys())
def test_a6_anything_else_is_refused_and_books_nothing(posting: JournalPosting) -> None:
    store = MemoryLedger()
    with pytest.raises(PostingRefused):
        ledger.book_posting(posting, store=store, journals=Reader(store))
    assert store.entries == {}


def test_a6_a_charge_posting_cannot_take_over_an_orders_journal() -> None:
    store = MemoryLedger()
    forged = REFUSED["charge kind"]
    with pytest.raises(PostingRefused):
        ledger.book_posting(forged, store=store, journals=Reader(store))

    # When the order's real charge arrives, it is booked under the journal id of its own order
    charge = OrderCharged(
        payment_id="pay_1", payment_order_id="po_future", seller_id="s_1", amount=700, currency="USD", psp_reference="c"
    )
    published = Published()
    assert ledger.book_charge(charge, store=store, journals=Reader(store), order_status=published) is True
    assert {e.journal_id for e in store.entries.values()} == {deterministic_id("jr", "charge", "po_future")}
    assert sorted((e.account, e.direction, e.amount) for e in store.entries.values()) == [
        ("psp_receivable", "debit", 700),
        ("seller_payable:s_1", "credit", 700),
    ]


def test_a6_an_identical_posting_again_is_an_idempotent_repeat() -> None:
    store = MemoryLedger()
    posting = LEGITIMATE["in transit"]
    assert ledger.book_posting(posting, store=store, journals=Reader(store)) is True
    booked = dict(store.entries)

    assert ledger.book_posting(posting, store=store, journals=Reader(store)) is False
    assert store.entries == booked


@pytest.mark.parametrize(
    "changed",
    [
        payout_posting("payout_in_transit", "seller_payable:s_1", "payout_in_transit:s_1", amount=501),
        payout_posting("payout_in_transit", "seller_payable:s_9", "payout_in_transit:s_9"),
        payout_posting("payout_in_transit", "seller_payable:s_1", "payout_in_transit:s_1", currency="EUR"),
    ],
    ids=["amount", "seller", "currency"],
)
def test_a6_the_same_journal_id_with_other_content_is_a_conflict(changed: JournalPosting) -> None:
    store = MemoryLedger()
    assert ledger.book_posting(LEGITIMATE["in transit"], store=store, journals=Reader(store)) is True
    booked = dict(store.entries)

    with pytest.raises(ledger.JournalConflict):
        ledger.book_posting(changed, store=store, journals=Reader(store))
    assert store.entries == booked


def test_a6_a_journal_with_fewer_or_more_lines_under_a_booked_id_is_a_conflict() -> None:
    store = MemoryLedger()
    assert ledger.book_posting(settlement(fees=30), store=store, journals=Reader(store)) is True

    # The same chunk id, now without its fee line (its first line matches what is booked)
    with pytest.raises(ledger.JournalConflict):
        ledger.book_posting(settlement(fees=0), store=store, journals=Reader(store))

    other = MemoryLedger()
    assert ledger.book_posting(settlement(fees=0), store=other, journals=Reader(other)) is True
    with pytest.raises(ledger.JournalConflict):
        ledger.book_posting(settlement(fees=30), store=other, journals=Reader(other))


def test_a6_a_charge_redelivered_with_another_amount_is_a_conflict_and_reports_no_progress() -> None:
    store = MemoryLedger()
    charge = OrderCharged(
        payment_id="pay_1", payment_order_id="po_1", seller_id="s_1", amount=700, currency="USD", psp_reference="c"
    )
    published = Published()
    assert ledger.book_charge(charge, store=store, journals=Reader(store), order_status=published) is True
    assert ledger.book_charge(charge, store=store, journals=Reader(store), order_status=published) is False
    assert len(published.messages) == 2

    with pytest.raises(ledger.JournalConflict):
        ledger.book_charge(
            charge.model_copy(update={"amount": 7000}), store=store, journals=Reader(store), order_status=published
        )
    assert len(published.messages) == 2
    assert sorted(e.amount for e in store.entries.values()) == [700, 700]


class RefusingLedger(MemoryLedger):
    """A store whose append is refused although nothing of the journal is stored (a transaction race)."""

    def append(self, entries: Sequence[ledger.Entry]) -> bool:
        return False


def test_a6_a_refused_append_with_nothing_stored_is_retried_not_called_a_conflict() -> None:
    store = RefusingLedger()
    with pytest.raises(TransientError):
        ledger.book_posting(LEGITIMATE["reversal"], store=store, journals=Reader(store))


def _fee_refund(amount: int, share: int, movement: str = "debit") -> JournalPosting:
    from functions.common.refund_events import RefundMoney
    from functions.wallet.refunds import refund_posting

    return refund_posting(
        RefundMoney(
            refund_id="rf_" + "e" * 32,
            payment_order_id="po_fee",
            payment_id="pay_fee",
            seller_id="seller_fee",
            amount=amount,
            application_fee_refunded=share,
            currency="USD",
            movement=movement,  # type: ignore[arg-type]
        )
    )


def _charged(store: MemoryLedger, fee: int) -> None:
    charge = OrderCharged(
        payment_id="pay_fee",
        payment_order_id="po_fee",
        seller_id="seller_fee",
        amount=1000,
        application_fee=fee,
        currency="USD",
        psp_reference="ch_fee",
    )
    assert store.append(ledger.charge_journal(charge, created_at="2026-01-01T00:00:00.000000Z"))


@pytest.mark.parametrize("movement", ["debit", "restore"])
def test_a_refund_journal_moves_platform_revenue_by_at_most_the_orders_commission(movement: str) -> None:
    # Given an order of 1,000 whose charge booked a commission of 300
    store = MemoryLedger()
    _charged(store, 300)

    # Then a refund (or its restore) may move all 300 of it, never 301, and books nothing when refused
    with pytest.raises(PostingRefused, match="moves 301 of platform_revenue, more than the order's commission of 300"):
        ledger.book_posting(_fee_refund(1000, 301, movement), store=store, journals=Reader(store))
    assert len(store.entries) == 3
    assert ledger.book_posting(_fee_refund(1000, 300, movement), store=store, journals=Reader(store)) is True


def test_a_refund_journal_naming_platform_revenue_for_an_order_without_a_commission_is_refused() -> None:
    store = MemoryLedger()
    _charged(store, 0)
    with pytest.raises(PostingRefused, match="more than the order's commission of 0"):
        ledger.book_posting(_fee_refund(1000, 1), store=store, journals=Reader(store))
    assert ledger.book_posting(_fee_refund(1000, 0), store=store, journals=Reader(store)) is True


def test_a_refund_journal_with_a_commission_share_waits_for_its_orders_charge_to_be_booked() -> None:
    # Given a refund of an order whose charge journal has not reached the ledger yet (another queue)
    store = MemoryLedger()
    posting = _fee_refund(500, 150)

    # Then it is retried, not refused; once the charge is booked it books
    with pytest.raises(TransientError, match="the charge of its order is not booked yet"):
        ledger.book_posting(posting, store=store, journals=Reader(store))
    assert store.entries == {}
    _charged(store, 300)
    assert ledger.book_posting(posting, store=store, journals=Reader(store)) is True


def _held_charge(store: MemoryLedger, *, hold: str) -> None:
    charge = OrderCharged(
        payment_id="pay_held",
        payment_order_id="po_held",
        seller_id="seller_held",
        amount=1000,
        application_fee=100,
        hold=hold,
        currency="USD",
        psp_reference="ch_held",
    )
    assert store.append(ledger.charge_journal(charge, created_at="2026-01-01T00:00:00.000000Z"))


def _release(amount: int) -> JournalPosting:
    from functions.wallet.holds import Hold, release_posting

    posting = release_posting(
        Hold(seller_id="seller_held", payment_order_id="po_held", currency="USD", status="RELEASED", released=amount)
    )
    assert posting is not None
    return posting


def test_a_hold_release_moves_seller_pending_by_at_most_the_orders_held_share() -> None:
    # Given a held order of 1,000 with a commission of 100: its charge booked 900 to seller_pending
    store = MemoryLedger()
    release = _release(901)
    with pytest.raises(TransientError, match="the charge of its order is not booked yet"):
        ledger.book_posting(release, store=store, journals=Reader(store))
    _held_charge(store, hold="until_fulfilled")

    # Then a release of 901 is refused and books nothing; one of 900 books
    with pytest.raises(
        PostingRefused, match="moves 901 of seller_pending:seller_held, more than the order's held share"
    ):
        ledger.book_posting(release, store=store, journals=Reader(store))
    assert len(store.entries) == 3
    assert ledger.book_posting(_release(900), store=store, journals=Reader(store)) is True


def test_a_hold_release_for_an_order_that_was_not_held_is_refused() -> None:
    store = MemoryLedger()
    _held_charge(store, hold="none")
    with pytest.raises(PostingRefused, match="more than the order's held share of 0"):
        ledger.book_posting(_release(1), store=store, journals=Reader(store))
    assert len(store.entries) == 3
