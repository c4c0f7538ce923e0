"""A settlement chunk's journal is an aggregate: its lines sum many orders, so they are bounded by the
64-bit range, not by the per-order request limit; a line that sums to zero is left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from functions.common.events import JournalPosting, PostingLine
from functions.common.money import MAX_AGGREGATE_MINOR
from functions.ledger.domain import posting_journal, trial_balance
from functions.reconciliation.domain import reconcile_lines
from functions.reconciliation.journal import settlement_journal
from functions.reconciliation.models import ObjectRef, Order, Run
from functions.reconciliation.store import SpooledBreaksCsv
from local_stack.psp.settlement import fee_for
from tests.support.reconciliation_ports import Claims, Orders, Postings

HEADER = "psp_reference,merchant_reference,type,amount,currency,fee,net,status,created_at,available_on\n"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def row(ref: str, amount: int, fee: int, seconds: int, currency: str = "USD") -> str:
    created = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return f"ch_{ref},{ref},charge,{amount},{currency},{fee},{amount - fee},succeeded,{created},2026-05-03\n"


def order(ref: str, amount: int, seconds: int, currency: str = "USD") -> Order:
    return Order(ref, "SUCCEEDED", amount, currency, f"ch_{ref}", (T0 + timedelta(seconds=seconds)).isoformat(), "s")


def reconcile(text: str, orders: list[Order]) -> tuple[Run, Postings]:
    postings = Postings()
    run = Run(run_id="rr_big", source=ObjectRef(bucket="b", key="k"), created_at=T0.isoformat())
    tally = reconcile_lines(
        run,
        text.splitlines(keepends=True),
        orders=Orders(orders),
        claims=Claims(),
        postings=postings,
        breaks_log=SpooledBreaksCsv(),
    )
    assert (tally.rows, tally.matched) == (len(orders), len(orders))
    return run, postings


def balances(postings: Postings) -> dict[str, int]:
    """Each account's balance (debits positive) over what the ledger books from these postings."""
    entries = [e for p in postings.booked().values() for e in posting_journal(p, created_at=T0.isoformat())]
    assert trial_balance(entries).balanced is True
    totals: dict[str, int] = {}
    for e in entries:
        totals[e.account] = totals.get(e.account, 0) + (e.amount if e.direction == "debit" else -e.amount)
    return totals


def test_a1_settlement_chunk_total_past_the_per_order_maximum_books() -> None:
    # Given two USD orders of 60,000,000 and one of 99,999,999 in one chunk: 219,999,999 together
    amounts = {"po_a": 60_000_000, "po_b": 60_000_000, "po_c": 99_999_999}
    fees = {ref: fee_for(amount, "USD") for ref, amount in amounts.items()}
    text = HEADER + "".join(row(ref, amount, fees[ref], i) for i, (ref, amount) in enumerate(amounts.items()))

    # When the file is reconciled
    _, postings = reconcile(text, [order(ref, amount, i) for i, (ref, amount) in enumerate(amounts.items())])

    # Then the chunk is booked as one journal clearing the whole receivable, net to the bank
    gross, fee = sum(amounts.values()), sum(fees.values())
    assert len(postings.journals) == 1
    assert balances(postings) == {"bank_cash": gross - fee, "psp_fee_expense": fee, "psp_receivable": -gross}


def test_a1_settlement_row_whose_fee_is_its_whole_amount_books_without_a_zero_line() -> None:
    # Given a matched row whose fee is the whole amount (net 0)
    text = HEADER + row("po_all_fee", 500, 500, 1)

    # When it is reconciled
    _, postings = reconcile(text, [order("po_all_fee", 500, 1)])

    # Then its journal has no bank line (nothing reached the bank): the fee clears the receivable
    (journal,) = postings.journals
    assert [(line.account, line.direction, line.amount) for line in journal.lines] == [
        ("psp_fee_expense", "debit", 500),
        ("psp_receivable", "credit", 500),
    ]
    assert balances(postings) == {"psp_fee_expense": 500, "psp_receivable": -500}


def test_a1_journal_lines_are_64_bit_aggregates_and_never_zero() -> None:
    # A line may carry any 64-bit amount, far past a single order's maximum
    assert PostingLine(account="bank_cash", direction="debit", amount=MAX_AGGREGATE_MINOR).amount == 2**63 - 1
    for amount in (0, -1, MAX_AGGREGATE_MINOR + 1):
        with pytest.raises(ValidationError):
            PostingLine(account="bank_cash", direction="debit", amount=amount)
    # And a settlement journal that would be all zero lines is not a journal at all
    assert settlement_journal("rr_1", 2, "USD", gross=0, fees=0) is None
    booked = settlement_journal("rr_1", 2, "USD", gross=MAX_AGGREGATE_MINOR, fees=MAX_AGGREGATE_MINOR - 1)
    assert isinstance(booked, JournalPosting)
    assert [line.amount for line in booked.lines] == [1, MAX_AGGREGATE_MINOR - 1, MAX_AGGREGATE_MINOR]
