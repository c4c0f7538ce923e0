"""Reconciliation domain on in-memory ports: every break class, cut-off skew, repeats, postings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.common.events import JournalPosting, PostingLine
from functions.ledger.domain import posting_journal, trial_balance
from functions.reconciliation.domain import reconcile_lines
from functions.reconciliation.journal import settlement_journal
from functions.reconciliation.missing import find_missing
from functions.reconciliation.models import BREAK_CLASSES, Claim, ObjectRef, Order, Run
from functions.reconciliation.settlement_file import NotASettlementFile, settlement_blocks
from functions.reconciliation.store import SpooledBreaksCsv
from functions.reconciliation.tally import Tally
from local_stack.psp.settlement import fee_for
from tests.support.reconciliation_ports import Claims, Orders, Postings
from tests.support.reconciliation_reference import settlement_rows

HEADER = "psp_reference,merchant_reference,type,amount,currency,fee,net,status,created_at,available_on\n"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NONE = dict.fromkeys(BREAK_CLASSES, 0)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def row(ref: str, amount: int, seconds: float, *, currency: str = "USD", psp: str | None = None) -> str:
    fee = fee_for(amount, currency)
    created = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return (
        f"{psp or 'ch_' + ref},{ref},charge,{amount},{currency},{fee},{amount - fee},succeeded,{created},2026-05-03\n"
    )


def order(ref: str, amount: int, seconds: float, *, status: str = "SUCCEEDED", currency: str = "USD") -> Order:
    return Order(ref, status, amount, currency, f"ch_{ref}", at(seconds), "seller")


def run_file(text: str, orders: Orders, claims: Claims, postings: Postings, run_id: str = "rr_1") -> Tally:
    run = Run(run_id=run_id, source=ObjectRef(bucket="b", key="k"), created_at=at(0))
    tally = reconcile_lines(
        run,
        text.splitlines(keepends=True),
        orders=orders,
        claims=claims,
        postings=postings,
        breaks_log=SpooledBreaksCsv(),
    )
    find_missing(tally, sender=run.sender, orders=orders, claims=claims, grace=timedelta(minutes=15))
    return tally


def breaks_csv(tally: Tally) -> list[list[str]]:
    return [line.split(",") for line in tally.breaks_log.contents().read().decode().splitlines()[1:]]


def test_every_break_class_with_its_line_number() -> None:
    # Given seven orders, and a file with one difference of each kind
    orders = Orders(
        [
            order("po_ok", 1000, 1),
            order("po_missing", 2000, 2),
            order("po_amount", 3000, 3),
            order("po_currency", 4000, 4),
            order("po_dup", 5000, 5),
            order("po_failed", 6000, 6, status="FAILED"),
            order("po_late", 7000, 100),  # decided after the file's last row
        ]
    )
    text = (
        HEADER
        + row("po_ok", 1000, 1)  # line 2
        + row("po_amount", 3100, 3)  # 3
        + row("po_currency", 4000, 4, currency="EUR")  # 4
        + row("po_dup", 5000, 5)  # 5
        + row("po_dup", 5000, 5)  # 6
        + row("po_failed", 6000, 6)  # 7
        + row("po_nobody", 4200, 7)  # 8
        + "ch_x,po_x,charge,12.50,USD\n"  # 9
        + row("po_ok", 1000, 1, psp="ch_other").replace("po_ok", "po_ok2")  # 10: unknown order
    )
    claims, postings = Claims(), Postings()

    # When it is reconciled
    tally = run_file(text, orders, claims, postings)

    # Then every row is counted once and every difference classified
    assert (tally.rows, tally.matched) == (9, 2)
    assert tally.breaks == {
        **NONE,
        "missing_internal": 2,
        "missing_external": 1,
        "amount_mismatch": 1,
        "currency_mismatch": 1,
        "status_mismatch": 1,
        "duplicate_row": 1,
        "malformed_row": 1,
    }
    assert tally.temporary == {**NONE, "missing_external": 1}
    lines = {(b[0], b[4]): b[2] for b in breaks_csv(tally)}
    assert lines[("amount_mismatch", "po_amount")] == "3"
    assert lines[("currency_mismatch", "po_currency")] == "4"
    assert lines[("duplicate_row", "po_dup")] == "6"
    assert lines[("status_mismatch", "po_failed")] == "7"
    assert lines[("missing_internal", "po_nobody")] == "8"
    assert lines[("malformed_row", "")] == "9"
    assert lines[("missing_external", "po_missing")] == ""
    # And only matched rows are posted (po_ok and po_dup's first row), as one journal for the chunk
    assert postings.journals == [settlement_journal("rr_1", 2, "USD", 6000, 59 + 175)]
    assert [(line.account, line.direction, line.amount) for line in postings.journals[0].lines] == [
        ("bank_cash", "debit", 6000 - 234),
        ("psp_fee_expense", "debit", 234),
        ("psp_receivable", "credit", 6000),
    ]
    # And the review queue gets the 8 permanent breaks, not the temporary one
    assert len(tally.review) == 8
    assert (tally.settled_amounts, tally.fees) == ({"USD": 6000}, {"USD": 234})


def test_a_temporary_break_closes_when_the_next_file_carries_the_order() -> None:
    orders = Orders([order("po_a", 1000, 1), order("po_late", 2000, 60)])
    claims, postings = Claims(), Postings()
    first = run_file(HEADER + row("po_a", 1000, 1), orders, claims, postings, "rr_1")
    assert (first.breaks["missing_external"], first.temporary["missing_external"]) == (0, 1)
    assert claims.by_order["po_late"].state == "awaiting"

    second = run_file(HEADER + row("po_late", 2000, 61), orders, claims, postings, "rr_2")

    assert (second.rows, second.matched, second.closed_temporary) == (1, 1, 1)
    assert second.breaks == NONE and second.temporary == NONE
    assert claims.by_order["po_late"].state == "settled"
    assert [(j.business_id, j.lines[-1].amount) for j in postings.journals] == [
        ("rr_1:2:USD", 1000),
        ("rr_2:2:USD", 2000),
    ]


def test_a_temporary_break_the_next_file_passes_over_is_escalated_once() -> None:
    orders = Orders([order("po_a", 1000, 1), order("po_late", 2000, 60), order("po_b", 3000, 120)])
    claims, postings = Claims(), Postings()
    run_file(HEADER + row("po_a", 1000, 1), orders, claims, postings, "rr_1")

    second = run_file(HEADER + row("po_b", 3000, 120), orders, claims, postings, "rr_2")
    third = run_file(HEADER + row("po_b", 3000, 120).replace("po_b", "po_c"), orders, claims, postings, "rr_3")

    assert (second.escalated, second.breaks["missing_external"]) == (1, 1)
    assert claims.by_order["po_late"].state == "missing"
    assert third.escalated == 0


def test_a_run_retried_after_a_crash_mid_escalation_still_reports_the_escalation() -> None:
    # Given a temporary break from the first file
    orders = Orders([order("po_a", 1000, 1), order("po_late", 2000, 60), order("po_b", 3000, 120)])
    claims, postings = Claims(), Postings()
    run_file(HEADER + row("po_a", 1000, 1), orders, claims, postings, "rr_1")

    # When the next file's run escalates it and crashes before the run is written
    class CrashAfterEscalating(Claims):
        def escalate(self, claim: Claim, run_id: str) -> bool:
            super().escalate(claim, run_id)
            raise RuntimeError("the function died")

    crashing = CrashAfterEscalating()
    crashing.by_order, crashing.escalations = claims.by_order, claims.escalations
    with pytest.raises(RuntimeError):
        run_file(HEADER + row("po_b", 3000, 120), orders, crashing, postings, "rr_2")
    assert claims.by_order["po_late"].state == "missing"

    # Then the retried run still counts and reports it, once
    retried = run_file(HEADER + row("po_b", 3000, 120), orders, claims, postings, "rr_2")
    assert (retried.escalated, retried.breaks["missing_external"]) == (1, 1)
    assert [(b[0], b[4]) for b in breaks_csv(retried)] == [("missing_external", "po_late")]
    assert [i.merchant_reference for i in retried.review] == ["po_late"]


def test_reconciling_the_same_file_again_in_the_same_run_is_not_a_duplicate() -> None:
    orders = Orders([order("po_a", 1000, 1), order("po_b", 2000, 2)])
    text = HEADER + row("po_a", 1000, 1) + row("po_b", 2000, 2)
    claims, postings = Claims(), Postings()
    first = run_file(text, orders, claims, postings, "rr_1")
    again = run_file(text, orders, claims, postings, "rr_1")  # a retried delivery after a crash
    other = run_file(text, orders, claims, postings, "rr_2")  # the same rows in another file

    assert (first.matched, again.matched) == (2, 2)
    assert again.breaks == NONE
    assert (other.matched, other.breaks["duplicate_row"]) == (0, 2)
    # The retry re-sends the same journal, which the ledger books once; the other file posts nothing
    assert list(postings.booked()) == ["rr_1:2:USD"]
    assert postings.booked()["rr_1:2:USD"].lines[-1].amount == 3000


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "the file is empty"), ("id,amount\n1,2\n", "not the settlement file header"), ('"a\n', "header")],
)
def test_a_file_without_the_settlement_header_is_refused(text: str, message: str) -> None:
    with pytest.raises(NotASettlementFile, match=message):
        list(settlement_blocks(text.splitlines(keepends=True)))


def test_malformed_lines_are_breaks_not_errors() -> None:
    text = HEADER + 'ch_1,po_1,charge,100,USD,3,97,succeeded,2026-05-01T12:00:00Z,2026-05-03\n"open\x00,x\n'
    text += "ch_2,po_2,charge,100,USD,3,90,succeeded,2026-05-01T12:00:00Z,2026-05-03\n"
    text += "ch_3,po_3,charge,100,XXX,3,97,succeeded,2026-05-01T12:00:00Z,2026-05-03\n"
    text += "ch_4,po_4,charge,100,USD,3,97,succeeded,yesterday,2026-05-03\n"
    parsed = list(settlement_rows(text.splitlines(keepends=True)))
    assert [type(p).__name__ for p in parsed] == ["Row", "Malformed", "Malformed", "Malformed", "Malformed"]
    assert [p.line for p in parsed] == [2, 3, 4, 5, 6]
    assert "fee 3 + net 90 != amount 100" in parsed[2].reason  # type: ignore[union-attr]


def test_the_settlement_journal_balances_and_clears_the_receivable() -> None:
    for fees in (0, 234):
        journal = settlement_journal("rr_1", 102, "EUR", 6000, fees)
        assert journal is not None
        assert (journal.kind, journal.business_id, journal.currency, journal.reference) == (
            "settlement",
            "rr_1:102:EUR",
            "EUR",
            "rr_1",
        )
        assert journal.lines == [
            PostingLine(account="bank_cash", direction="debit", amount=6000 - fees),
            *([PostingLine(account="psp_fee_expense", direction="debit", amount=fees)] if fees else []),
            PostingLine(account="psp_receivable", direction="credit", amount=6000),
        ]
        entries = posting_journal(JournalPosting.model_validate_json(journal.model_dump_json()), created_at=at(0))
        assert trial_balance(entries).balanced
