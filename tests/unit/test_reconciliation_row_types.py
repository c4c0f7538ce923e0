"""Every settlement row type (charge, refund, payout, dispute, dispute_reversal) matched against our own
records, each break class for each type, the postings they book, and the closing balance. Payout rows
come in the payout provider's file, every other type in the PSP's."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from functions.common.events import JournalPosting
from functions.ledger.accounts import BANK_CASH, PSP_FEE_EXPENSE, PSP_RECEIVABLE
from functions.ledger.domain import posting_journal, trial_balance
from functions.ledger.policy import check_posting
from functions.reconciliation.closing_balance import check_closing_balance
from functions.reconciliation.domain import reconcile_lines, sender_of
from functions.reconciliation.missing import find_missing
from functions.reconciliation.models import BREAK_CLASSES, ObjectRef, Order, Record, Run
from functions.reconciliation.ports import RecordSource
from functions.reconciliation.row_kinds import ROW_KINDS
from functions.reconciliation.store import SpooledBreaksCsv
from functions.reconciliation.tally import Tally
from tests.support.reconciliation_ports import Claims, Orders, Postings, Records
from tests.support.settlement_files import HEADER, summary_line, with_summary

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NONE = dict.fromkeys(BREAK_CLASSES, 0)
SETTLED = {"refund": "succeeded", "payout": "paid", "dispute": "succeeded", "dispute_reversal": "succeeded"}
OUTGOING = ("refund", "payout", "dispute")
PSP_KEY = "settlements/2026-05-01/psp-settlement-2026-05-01.csv"
PROVIDER_KEY = "settlements/2026-05-01/payout-provider/payouts-2026-05-01.csv"


def key_for(kind: str) -> str:
    """The key of the file that carries rows of `kind`."""
    return PROVIDER_KEY if ROW_KINDS[kind].sender == "payout_provider" else PSP_KEY


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def row(kind: str, ref: str, amount: int, seconds: float, *, fee: int = 0, currency: str = "USD", **kw: str) -> str:
    """A settlement row of `kind`: money out has net = amount + fee, money in net = amount - fee."""
    net = amount + fee if kind in OUTGOING else amount - fee
    status = kw.get("status", SETTLED.get(kind, "succeeded"))
    psp = kw.get("psp", f"psp_{ref}")
    created = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return f"{psp},{ref},{kind},{amount},{currency},{fee},{net},{status},{created},2026-05-03\n"


def record(ref: str, status: str, amount: int, seconds: float, *, fee: int = 0, currency: str = "USD") -> Record:
    return Record(ref, status, amount, currency, f"psp_{ref}", at(seconds), "seller", fee)


def a_day() -> tuple[Orders, dict[str, RecordSource], str]:
    """Our records of a day with one of each: a charge, a refund of part of it, a payout, a dispute opened
    and won (its opening row and its reversal), and a dispute lost - and the PSP's file of them (all but
    the payout: `a_days_payouts` is the payout provider's file)."""
    orders = Orders([Order("po_1", "SUCCEEDED", 10_000, "USD", "psp_po_1", at(1), "seller")])
    records: dict[str, RecordSource] = {
        "refund": Records([record("re_1", "SUCCEEDED", 2_000, 2)]),
        "payout": Records([record("pay_1", "PAID", 3_000, 3)], settled=["PAID"]),
        "dispute": Records(
            [record("dp_won", "WON", 1_000, 4, fee=1_500), record("dp_lost", "LOST", 500, 5, fee=1_500)],
            settled=["OPEN", "WON", "LOST"],
        ),
        "dispute_reversal": Records([record("dp_won", "WON", 1_000, 6)], settled=["WON"]),
    }
    text = (
        HEADER
        + row("charge", "po_1", 10_000, 1, fee=320)
        + row("refund", "re_1", 2_000, 2)
        + row("dispute", "dp_won", 1_000, 4, fee=1_500, psp="psp_dp_won")
        + row("dispute", "dp_lost", 500, 5, fee=1_500, psp="psp_dp_lost")
        + row("dispute_reversal", "dp_won", 1_000, 6, psp="psp_dp_won")
    )
    return orders, records, text


def a_days_payouts() -> str:
    """The payout provider's file of `a_day`: its payout."""
    return HEADER + row("payout", "pay_1", 3_000, 3)


def run_file(
    text: str,
    orders: Orders,
    records: dict[str, RecordSource],
    claims: Claims,
    postings: Postings,
    run_id: str = "rr_1",
    key: str = PSP_KEY,
) -> Tally:
    run = Run(run_id=run_id, source=ObjectRef(bucket="b", key=key), sender=sender_of(key), created_at=at(0))
    tally = reconcile_lines(
        run,
        text.splitlines(keepends=True),
        orders=orders,
        claims=claims,
        postings=postings,
        breaks_log=SpooledBreaksCsv(),
        records=records,
    )
    find_missing(tally, sender=run.sender, orders=orders, claims=claims, grace=timedelta(minutes=15), records=records)
    return tally


def breaks_of(tally: Tally) -> list[tuple[str, str, str]]:
    lines = tally.breaks_log.contents().read().decode().splitlines()[1:]
    return [(b[0], b[2], b[4]) for b in (line.split(",") for line in lines)]


def balances(journals: list[JournalPosting]) -> dict[str, int]:
    """Each account's balance (debits positive) over the journals, after checking each is balanced."""
    totals: dict[str, int] = defaultdict(int)
    for journal in journals:
        assert trial_balance(posting_journal(journal, created_at=at(0))).balanced
        for line in journal.lines:
            totals[line.account] += line.amount if line.direction == "debit" else -line.amount
    return {account: amount for account, amount in totals.items() if amount}


def test_a_day_of_every_row_type_matches_with_no_break_and_clears_the_receivable() -> None:
    # Given our records of a day of every kind, the PSP's file of them and the payout provider's
    orders, records, text = a_day()
    claims, postings = Claims(), Postings()

    # When they are reconciled
    tally = run_file(with_summary(text), orders, records, claims, postings)
    payouts = run_file(with_summary(a_days_payouts()), orders, records, claims, postings, "rr_2", PROVIDER_KEY)

    # Then every row matches, nothing is a break, and each record is claimed under its own type
    assert (tally.rows, tally.matched, tally.breaks, tally.temporary) == (5, 5, NONE, NONE)
    assert (payouts.rows, payouts.matched, payouts.breaks, payouts.temporary) == (1, 1, NONE, NONE)
    assert sorted(claims.by_order) == [
        "dispute#dp_lost",
        "dispute#dp_won",
        "dispute_reversal#dp_won",
        "payout#pay_1",
        "po_1",
        "refund#re_1",
    ]
    # And money in (the charge, the reversal) and money out (the refund, the payout, the disputes with
    # their fees, which the sellers bear) are booked as one journal each for each file's chunk
    assert (tally.settled_amounts, tally.fees) == ({"USD": 11_000}, {"USD": 320})
    assert (tally.paid_out, tally.paid_out_fees) == ({"USD": 2_000 + 2_500 + 2_000}, {"USD": 0})
    assert (payouts.settled_amounts, payouts.paid_out, payouts.paid_out_fees) == ({}, {"USD": 3_000}, {"USD": 0})
    assert [(j.kind, j.business_id) for j in postings.journals] == [
        ("settlement", "rr_1:2:USD"),
        ("settlement_cash_out", "rr_1:2:USD"),
        ("settlement_cash_out", "rr_2:2:USD"),
    ]
    for journal in postings.journals:
        check_posting(journal)  # the ledger's policy accepts them
    # And with what the other services booked that day, the receivable clears: the bank holds the day's net
    others = [
        _journal("charge", [("psp_receivable", "debit", 10_000), ("seller_payable:seller", "credit", 10_000)]),
        _journal("refund", [("seller_payable:seller", "debit", 2_000), ("psp_receivable", "credit", 2_000)]),
        _journal(
            "payout_cash_out", [("payout_in_transit:seller", "debit", 3_000), ("psp_receivable", "credit", 3_000)]
        ),
        _journal(
            "dispute_won",
            [
                ("dispute_reserve:seller", "debit", 2_500),
                ("seller_payable:seller", "credit", 1_000),
                ("psp_receivable", "credit", 1_500),
            ],
        ),
        _journal("dispute_lost", [("dispute_reserve:seller", "debit", 2_000), ("psp_receivable", "credit", 2_000)]),
    ]
    after = balances(others + postings.journals)
    assert PSP_RECEIVABLE not in after
    assert (after[BANK_CASH], after[PSP_FEE_EXPENSE]) == (10_000 - 320 - 2_000 - 3_000 - 2_500 - 2_000 + 1_000, 320)


def _journal(kind: str, lines: list[tuple[str, str, int]]) -> JournalPosting:
    return JournalPosting.model_validate(
        {
            "producer": "payouts",
            "kind": kind,
            "business_id": f"{kind}_1",
            "currency": "USD",
            "reference": f"{kind}_1",
            "lines": [{"account": a, "direction": d, "amount": n} for a, d, n in lines],
        }
    )


def _one_kind(kind: str) -> tuple[Orders, dict[str, RecordSource], str]:
    """Our record of one `kind` (amount 1000; a dispute's fee 1500) and its matching row."""
    status = {"refund": "SUCCEEDED", "payout": "PAID", "dispute": "OPEN", "dispute_reversal": "WON"}[kind]
    source = Records([record("x_1", status, 1_000, 1, fee=_fee(kind))], settled=[status])
    return Orders(), {kind: source}, row(kind, "x_1", 1_000, 1, fee=_fee(kind))


def _fee(kind: str) -> int:
    return 1_500 if kind == "dispute" else 0


def _span(kind: str, records: dict[str, RecordSource]) -> tuple[Orders, str, str]:
    """Two matching rows, at 0 s and 5 s, that give the file carrying `kind` its span: two orders' charge
    rows in the PSP's file; two payouts' rows (their records added to `records`) in the payout provider's."""
    if ROW_KINDS[kind].sender == "psp":
        orders = Orders([Order(f"po_{n}", "SUCCEEDED", 500, "USD", f"psp_po_{n}", at(n), "seller") for n in (0, 5)])
        return orders, row("charge", "po_0", 500, 0), row("charge", "po_5", 500, 5)
    payouts = records["payout"]
    assert isinstance(payouts, Records)
    payouts.by_id.update({f"pay_{n}": record(f"pay_{n}", "PAID", 500, n) for n in (0, 5)})
    return Orders(), row("payout", "pay_0", 500, 0), row("payout", "pay_5", 500, 5)


def _planted(kind: str, klass: str) -> tuple[str, int]:
    """The record's row with one difference of `klass`, and how many rows of the file then match (the
    two rows that give the file its span, and any of x_1's)."""
    fee = _fee(kind)
    clean = row(kind, "x_1", 1_000, 1, fee=fee)
    planted = {
        "amount_mismatch": (row(kind, "x_1", 1_100, 1, fee=fee), 2),
        "currency_mismatch": (row(kind, "x_1", 1_000, 1, fee=fee, currency="EUR"), 2),
        "status_mismatch": (row(kind, "x_1", 1_000, 1, fee=fee, status="failed"), 2),
        "duplicate_row": (clean + clean, 3),
        "missing_internal": (clean + row(kind, "x_unknown", 1_000, 1, fee=fee), 3),
        "missing_external": ("", 2),
    }
    return planted[klass]


@pytest.mark.parametrize("kind", ["refund", "payout", "dispute", "dispute_reversal"])
@pytest.mark.parametrize(
    "klass",
    [
        "amount_mismatch",
        "currency_mismatch",
        "status_mismatch",
        "duplicate_row",
        "missing_internal",
        "missing_external",
    ],
)
def test_each_break_class_is_found_for_each_row_type(kind: str, klass: str) -> None:
    # Given our record of one refund / payout / dispute, and the file that carries it with one difference
    _, records, _ = _one_kind(kind)
    orders, first, last = _span(kind, records)
    rows, matched = _planted(kind, klass)
    text = HEADER + first + rows + last
    claims, postings = Claims(), Postings()

    # When it is reconciled
    tally = run_file(text, orders, records, claims, postings, key=key_for(kind))

    # Then exactly that break is found, on the record's id
    assert tally.breaks == {**NONE, klass: 1}
    reference = "x_unknown" if klass == "missing_internal" else "x_1"
    assert [(b[0], b[2]) for b in breaks_of(tally)] == [(klass, reference)]
    assert tally.matched == matched


@pytest.mark.parametrize("kind", ["refund", "payout", "dispute", "dispute_reversal"])
def test_a_row_settled_by_an_earlier_file_is_a_duplicate_in_the_next(kind: str) -> None:
    orders, records, clean = _one_kind(kind)
    claims, postings = Claims(), Postings()
    key = key_for(kind)
    first = run_file(HEADER + clean, orders, records, claims, postings, "rr_1", key)
    second = run_file(HEADER + clean, orders, records, claims, postings, "rr_2", key)
    again = run_file(HEADER + clean, orders, records, claims, postings, "rr_1", key)  # rr_1 retried

    assert (first.matched, first.breaks) == (1, NONE)
    assert (second.matched, second.breaks) == (0, {**NONE, "duplicate_row": 1})
    assert (again.matched, again.breaks) == (1, NONE)
    journal = "rr_1:2:USD" if kind == "dispute_reversal" else "settlement_cash_out/rr_1:2:USD"
    assert list(postings.booked()) == [journal]


def test_a_reversal_of_a_dispute_we_lost_and_a_payout_we_failed_are_status_mismatches() -> None:
    records: dict[str, RecordSource] = {
        "dispute_reversal": Records([record("dp_1", "LOST", 1_000, 1)], settled=["WON"]),
        "payout": Records([record("pay_1", "FAILED", 3_000, 2)], settled=["PAID"]),
    }
    claims, postings = Claims(), Postings()
    reversals = run_file(HEADER + row("dispute_reversal", "dp_1", 1_000, 1), Orders(), records, claims, postings)
    payouts = run_file(
        HEADER + row("payout", "pay_1", 3_000, 2), Orders(), records, claims, postings, "rr_2", PROVIDER_KEY
    )
    assert (reversals.breaks, payouts.breaks) == ({**NONE, "status_mismatch": 1}, {**NONE, "status_mismatch": 1})
    assert sorted((b[0], b[2]) for b in breaks_of(reversals) + breaks_of(payouts)) == [
        ("status_mismatch", "dp_1"),
        ("status_mismatch", "pay_1"),
    ]


def test_a_dispute_row_with_another_fee_than_ours_is_an_amount_mismatch() -> None:
    records: dict[str, RecordSource] = {"dispute": Records([record("dp_1", "OPEN", 1_000, 1, fee=1_500)])}
    tally = run_file(HEADER + row("dispute", "dp_1", 1_000, 1, fee=2_000), Orders(), records, Claims(), Postings())
    assert tally.breaks == {**NONE, "amount_mismatch": 1}
    assert "fee: file 2000, dispute 1500" in tally.breaks_log.contents().read().decode()


def test_rows_of_a_type_without_a_record_source_are_missing_internal() -> None:
    text = HEADER + row("refund", "re_1", 1_000, 1)
    tally = run_file(text, Orders(), {}, Claims(), Postings())
    assert tally.breaks == {**NONE, "missing_internal": 1}


def test_a_money_out_row_whose_net_is_not_amount_plus_fee_is_malformed() -> None:
    text = HEADER + "psp_r,re_1,refund,1000,USD,30,970,succeeded,2026-05-01T12:00:00Z,2026-05-03\n"
    tally = run_file(text, Orders(), {}, Claims(), Postings())
    assert tally.breaks == {**NONE, "malformed_row": 1}
    assert "net 970 != amount + fee" in tally.breaks_log.contents().read().decode()


# --- the closing balance ---------------------------------------------------------------------------------


def test_a_file_whose_rows_sum_to_its_summaries_balances() -> None:
    _, _, text = a_day()
    # signed amounts: in 10000 and 1000, out 2000, 1000 and 500; fees 320 + 1500 + 1500
    assert check_closing_balance((text + summary_line("USD", 7_500, 3_320)).splitlines(keepends=True)) is None
    assert check_closing_balance(with_summary(text).splitlines(keepends=True)) is None
    # and the payout provider's file of the day: out 3000, no fee
    payouts = a_days_payouts()
    assert check_closing_balance((payouts + summary_line("USD", -3_000, 0)).splitlines(keepends=True)) is None
    assert check_closing_balance(with_summary(payouts).splitlines(keepends=True)) is None


USD_600 = summary_line("USD", 600, 0)


@pytest.mark.parametrize(
    ("tail", "reason", "detail"),
    [
        ("", "summary_missing", "the file has no summary row: it may be truncated"),
        (
            summary_line("USD", 1_000, 0),
            "balance_mismatch",
            "USD: rows sum to net 600 (amount 600, fee 0); the summary (line 4) says net 1000 (amount 1000, fee 0)",
        ),
        (
            summary_line("USD", 600, 10),
            "balance_mismatch",
            "USD: rows sum to net 600 (amount 600, fee 0); the summary (line 4) says net 590 (amount 600, fee 10)",
        ),
        (summary_line("EUR", 0, 0), "balance_mismatch", "USD: rows sum to net 600 but there is no summary row"),
        (USD_600 + USD_600, "balance_mismatch", "USD: 2 summary rows (lines 4, 5)"),
    ],
)
def test_a_file_that_does_not_sum_to_its_summary_is_refused(tail: str, reason: str, detail: str) -> None:
    # Given a charge of 1000 in and a refund of 400 out: 600 net
    text = HEADER + row("charge", "po_1", 1_000, 1) + row("refund", "re_1", 400, 2) + tail
    assert (
        check_closing_balance(
            (HEADER + row("charge", "po_1", 1_000, 1) + row("refund", "re_1", 400, 2) + USD_600).splitlines(
                keepends=True
            )
        )
        is None
    )

    problem = check_closing_balance(text.splitlines(keepends=True))

    assert problem is not None
    assert (problem.reason, problem.detail) == (reason, detail)


def test_a_malformed_summary_is_a_malformed_row_and_leaves_its_currency_without_a_summary() -> None:
    text = HEADER + row("charge", "po_1", 1_000, 1) + "summary,2026-05-01,summary,1000,USD,0,999,closing,x,\n"
    problem = check_closing_balance(text.splitlines(keepends=True))
    assert problem is not None
    assert problem.reason == "summary_missing"
