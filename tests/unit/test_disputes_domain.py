"""Disputes (domain): a dispute reserves amount + fee from the seller's available balance, then gives the
amount back (won) or pays everything out (lost), each exactly once, whatever the order and number of the
PSP's notices and wherever the process dies; wallet and ledger agree bucket by bucket after every step."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from functions.common.errors import NotFound
from functions.common.events import JournalPosting
from functions.disputes import domain
from functions.disputes.models import Dispute, DisputeNotice, Outcome
from functions.ledger import domain as ledger
from functions.ledger.policy import PostingRefused, check_posting
from tests.support.fakes import DyingPublisher, ProcessDied
from tests.unit.test_a6_ledger_postings_policy import MemoryLedger, Reader

SELLER = "seller_d"
CHARGED = 10_000
AMOUNT = 4_000
FEE = 1_500


class MemoryDisputes:
    """The disputes table and the seller's wallet balance, changed together (one transaction) or not at all."""

    def __init__(self, *, available: int = CHARGED) -> None:
        self.disputes: dict[str, Dispute] = {}
        self.available = available
        self.reserved = 0

    def open_once(self, dispute: Dispute) -> bool:
        if dispute.dispute_id in self.disputes:
            return False
        self.disputes[dispute.dispute_id] = dispute
        self.available -= dispute.held
        self.reserved += dispute.held
        return True

    def close_once(self, dispute: Dispute) -> bool:
        if self.disputes[dispute.dispute_id].status != "OPEN":
            return False
        self.disputes[dispute.dispute_id] = dispute
        self.reserved -= dispute.held
        if dispute.status == "WON":
            self.available += dispute.amount
        return True

    def get(self, dispute_id: str) -> Dispute | None:
        return self.disputes.get(dispute_id)

    def by_payment_order(self, payment_order_id: str) -> list[Dispute]:
        return [d for d in self.disputes.values() if d.payment_order_id == payment_order_id]


class Books:
    """The ledger's postings consumer: every posting checked by the real policy and booked once."""

    def __init__(self) -> None:
        self.store = MemoryLedger()
        # The charge the dispute takes back: booked as the charge path books it.
        self.store.append(
            ledger.journal(
                "charge",
                "po_d",
                [("psp_receivable", "debit", CHARGED), (f"seller_payable:{SELLER}", "credit", CHARGED)],
                currency="USD",
                payment_order_id="po_d",
                created_at="2026-01-01T00:00:00Z",
            )
        )

    def publish(self, message: BaseModel) -> None:
        assert isinstance(message, JournalPosting)
        ledger.book_posting(message, store=self.store, journals=Reader(self.store))

    def credit_balance(self, account: str) -> int:
        entries = self.store.by_account(account)
        return sum(e.amount if e.direction == "credit" else -e.amount for e in entries)

    def debits_equal_credits(self) -> bool:
        return ledger.trial_balance(self.store.all_entries()).balanced


def notice(
    outcome: Outcome, *, amount: int = AMOUNT, fee: int = FEE, psp_dispute_id: str = "dp_psp_1"
) -> DisputeNotice:
    return DisputeNotice(
        psp_dispute_id=psp_dispute_id,
        payment_order_id="po_d",
        seller_id=SELLER,
        amount=amount,
        fee=fee,
        currency="USD",
        reason="fraudulent",
        outcome=outcome,
    )


def assert_books(store: MemoryDisputes, books: Books, *, available: int, reserved: int, psp_receivable: int) -> None:
    assert (store.available, store.reserved) == (available, reserved)
    assert books.credit_balance(f"seller_payable:{SELLER}") == available
    assert books.credit_balance(f"dispute_reserve:{SELLER}") == reserved
    assert -books.credit_balance("psp_receivable") == psp_receivable
    assert books.debits_equal_credits()


def test_a_dispute_reserves_amount_and_fee_then_a_win_gives_the_amount_back_and_the_psp_keeps_the_fee() -> None:
    store, books = MemoryDisputes(), Books()

    opened = domain.apply_notice(notice("open"), store=store, ledger=books)
    assert (opened.status, opened.amount, opened.fee, opened.dispute_id) == (
        "OPEN",
        AMOUNT,
        FEE,
        domain.dispute_id_for("dp_psp_1"),
    )
    assert_books(store, books, available=CHARGED - 5_500, reserved=5_500, psp_receivable=CHARGED)

    won = domain.apply_notice(notice("won"), store=store, ledger=books)
    assert won.status == "WON" and won.closed_at is not None
    assert_books(store, books, available=CHARGED - FEE, reserved=0, psp_receivable=CHARGED - FEE)


def test_a_lost_dispute_pays_amount_and_fee_out_of_the_reserve() -> None:
    store, books = MemoryDisputes(), Books()
    domain.apply_notice(notice("open"), store=store, ledger=books)

    lost = domain.apply_notice(notice("lost"), store=store, ledger=books)

    assert lost.status == "LOST"
    assert_books(store, books, available=CHARGED - 5_500, reserved=0, psp_receivable=CHARGED - 5_500)


def test_a_close_before_the_opening_opens_then_closes_and_the_late_opening_moves_nothing() -> None:
    store, books = MemoryDisputes(), Books()

    domain.apply_notice(notice("lost"), store=store, ledger=books)
    late = domain.apply_notice(notice("open"), store=store, ledger=books)

    assert late.status == "LOST"
    assert_books(store, books, available=CHARGED - 5_500, reserved=0, psp_receivable=CHARGED - 5_500)


@pytest.mark.parametrize("outcome", ["open", "won", "lost"])
def test_every_notice_delivered_three_times_moves_money_once(outcome: Outcome) -> None:
    store, books = MemoryDisputes(), Books()
    domain.apply_notice(notice("open"), store=store, ledger=books)
    for _ in range(3):
        domain.apply_notice(notice(outcome), store=store, ledger=books)

    expected = {
        "open": (CHARGED - 5_500, 5_500, CHARGED),
        "won": (CHARGED - FEE, 0, CHARGED - FEE),
        "lost": (CHARGED - 5_500, 0, CHARGED - 5_500),
    }[outcome]
    assert_books(store, books, available=expected[0], reserved=expected[1], psp_receivable=expected[2])


def test_a_dispute_before_the_charge_is_credited_takes_the_balance_negative_and_the_credit_restores_it() -> None:
    # Given a seller whose charge the PSP has not yet confirmed to us (its webhook comes later)
    store, books = MemoryDisputes(available=0), Books()
    books.store = MemoryLedger()

    # When the dispute opens first, then the charge is credited and booked
    domain.apply_notice(notice("open"), store=store, ledger=books)
    assert (store.available, books.credit_balance(f"seller_payable:{SELLER}")) == (-5_500, -5_500)
    store.available += CHARGED
    books.store.append(
        ledger.journal(
            "charge",
            "po_d",
            [("psp_receivable", "debit", CHARGED), (f"seller_payable:{SELLER}", "credit", CHARGED)],
            currency="USD",
            payment_order_id="po_d",
            created_at="2026-01-01T00:00:00Z",
        )
    )

    # Then the books agree as if the events had come in order
    assert_books(store, books, available=CHARGED - 5_500, reserved=5_500, psp_receivable=CHARGED)


@pytest.mark.parametrize("outcome", ["open", "won"])
def test_a_crash_after_the_wallet_transaction_is_finished_by_the_redelivery(outcome: Outcome) -> None:
    store, books = MemoryDisputes(), Books()
    if outcome == "won":
        domain.apply_notice(notice("open"), store=store, ledger=books)

    # When the process dies after the transaction, before any posting is sent
    with pytest.raises(ProcessDied):
        domain.apply_notice(notice(outcome), store=store, ledger=DyingPublisher())
    # Then the wallet moved, the ledger not yet; the redelivery books what is missing and moves nothing
    domain.apply_notice(notice(outcome), store=store, ledger=books)

    if outcome == "open":
        assert_books(store, books, available=CHARGED - 5_500, reserved=5_500, psp_receivable=CHARGED)
    else:
        assert_books(store, books, available=CHARGED - FEE, reserved=0, psp_receivable=CHARGED - FEE)


def test_a_close_the_other_way_or_other_money_is_a_conflict_and_moves_nothing() -> None:
    store, books = MemoryDisputes(), Books()
    domain.apply_notice(notice("won"), store=store, ledger=books)

    with pytest.raises(domain.DisputeConflict):
        domain.apply_notice(notice("lost"), store=store, ledger=books)
    with pytest.raises(domain.DisputeConflict):
        domain.apply_notice(notice("open", amount=AMOUNT + 1), store=store, ledger=books)

    assert_books(store, books, available=CHARGED - FEE, reserved=0, psp_receivable=CHARGED - FEE)


def test_a_zero_fee_win_posts_no_fee_line() -> None:
    store, books = MemoryDisputes(), Books()
    won = domain.apply_notice(notice("won", fee=0), store=store, ledger=books)
    postings = domain.postings_for(won)
    assert [(p.kind, [(line.account, line.direction, line.amount) for line in p.lines]) for p in postings] == [
        (
            "dispute_reserve",
            [(f"seller_payable:{SELLER}", "debit", AMOUNT), (f"dispute_reserve:{SELLER}", "credit", AMOUNT)],
        ),
        (
            "dispute_won",
            [(f"dispute_reserve:{SELLER}", "debit", AMOUNT), (f"seller_payable:{SELLER}", "credit", AMOUNT)],
        ),
    ]
    assert_books(store, books, available=CHARGED, reserved=0, psp_receivable=CHARGED)


@pytest.mark.parametrize(
    "change",
    [
        {"producer": "payouts"},
        {"business_id": "po_not_a_dispute"},
        {"reference": "dp_other"},
        {"payment_order_id": "po_d"},
    ],
)
def test_the_ledger_refuses_a_dispute_posting_outside_the_disputes_authority(change: dict[str, str]) -> None:
    dispute = domain.apply_notice(notice("lost"), store=MemoryDisputes(), ledger=Books())
    for posting in domain.postings_for(dispute):
        check_posting(posting)  # as sent: accepted
        with pytest.raises(PostingRefused):
            check_posting(posting.model_copy(update=change))


def test_the_ledger_refuses_a_dispute_posting_that_names_two_sellers_or_another_account() -> None:
    dispute = domain.apply_notice(notice("won"), store=MemoryDisputes(), ledger=Books())
    reserve, won = domain.postings_for(dispute)
    two_sellers = reserve.model_copy(
        update={"lines": [reserve.lines[0], reserve.lines[1].model_copy(update={"account": "dispute_reserve:other"})]}
    )
    to_bank = won.model_copy(
        update={"lines": [*won.lines[:2], won.lines[2].model_copy(update={"account": "bank_cash"})]}
    )
    for posting in (two_sellers, to_bank):
        with pytest.raises(PostingRefused):
            check_posting(posting)


def test_the_read_side_answers_404_for_an_unknown_dispute_and_lists_an_orders_disputes() -> None:
    store = MemoryDisputes()
    domain.apply_notice(notice("open"), store=store, ledger=Books())
    domain.apply_notice(notice("open", psp_dispute_id="dp_psp_2", amount=100), store=store, ledger=Books())

    listed = domain.list_disputes("po_d", store=store)
    assert sorted((d.psp_dispute_id, d.amount, d.status) for d in listed.disputes) == [
        ("dp_psp_1", AMOUNT, "OPEN"),
        ("dp_psp_2", 100, "OPEN"),
    ]
    assert set(listed.disputes[0].model_dump()) == {
        "dispute_id",
        "payment_order_id",
        "psp_dispute_id",
        "amount",
        "fee",
        "currency",
        "status",
        "reason",
    }
    assert domain.list_disputes("po_other", store=store).disputes == []
    with pytest.raises(NotFound):
        domain.get_dispute("dp_unknown", store=store)


def test_a_held_orders_dispute_books_the_part_it_took_from_the_hold_to_seller_pending() -> None:
    # A dispute of AMOUNT + fee that took 1,000 from the order's hold, and gave 600 back to it when won
    dispute = domain.apply_notice(notice("won"), store=MemoryDisputes(), ledger=Books()).model_copy(
        update={"from_pending": 1_000, "to_pending": 600}
    )
    reserve, won = domain.postings_for(dispute)
    assert [(line.account, line.direction, line.amount) for line in reserve.lines] == [
        (f"seller_payable:{SELLER}", "debit", dispute.held - 1_000),
        (f"seller_pending:{SELLER}", "debit", 1_000),
        (f"dispute_reserve:{SELLER}", "credit", dispute.held),
    ]
    assert [(line.account, line.direction, line.amount) for line in won.lines] == [
        (f"dispute_reserve:{SELLER}", "debit", dispute.held),
        (f"seller_payable:{SELLER}", "credit", dispute.amount - 600),
        (f"seller_pending:{SELLER}", "credit", 600),
        ("psp_receivable", "credit", dispute.fee),
    ]
    for posting in (reserve, won):
        check_posting(posting)
    # All of it from the hold: no seller_payable line
    whole = dispute.model_copy(update={"from_pending": dispute.held, "to_pending": dispute.amount})
    reserve, won = domain.postings_for(whole)
    assert [line.account for line in reserve.lines] == [f"seller_pending:{SELLER}", f"dispute_reserve:{SELLER}"]
    assert [line.account for line in won.lines] == [
        f"dispute_reserve:{SELLER}",
        f"seller_pending:{SELLER}",
        "psp_receivable",
    ]
    check_posting(reserve)
    check_posting(won)
