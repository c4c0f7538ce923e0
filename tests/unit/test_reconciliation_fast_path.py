"""The reconciler's column-wise fast paths give exactly what the row-by-row reference gives: parsing
(`parse_block` vs `parse_fields`) and the stream path (`reconcile_lines` vs `reconcile_rows`), port calls
included."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from functions.reconciliation import classify
from functions.reconciliation.classify import all_matched
from functions.reconciliation.domain import reconcile_lines
from functions.reconciliation.models import BREAK_CLASSES, CHUNK, Claim, ObjectRef, Order, Run
from functions.reconciliation.settlement_file import parse_block, parse_fields, parse_lines, rows_of
from functions.reconciliation.store import SpooledBreaksCsv
from functions.reconciliation.tally import Tally
from tests.support.reconciliation_ports import Claims, Orders, Postings
from tests.support.reconciliation_reference import reconcile_rows, settlement_rows

HEADER = "psp_reference,merchant_reference,type,amount,currency,fee,net,status,created_at,available_on\n"
GOOD = "ch_{n},po_{n},charge,1000,USD,59,941,succeeded,2026-05-01T12:00:{s:02d}.000Z,2026-05-03\n"
ODD_LINES = [
    "",  # blank
    "\n",
    'ch_q,"po_q",charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\n',  # quoted
    '"open\n',  # broken quote
    "ch_z,po_z,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\x00\n",  # NUL
    "ch_a,po_a,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00Z\n",  # 9 fields
    "ch_b,po_b,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03,x\n",  # 11 fields
    ",po_c,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",  # no psp reference
    "ch_d,po_d,chargeback,1000,USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",
    "ch_e,po_e,charge,1000,XXX,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",
    "ch_f,po_f,charge,10.00,USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",
    "ch_g,po_g,charge,+1000, USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",
    "ch_h,po_h,charge,+1000,USD, 59 ,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",  # int() accepts these
    "ch_i,po_i,charge,0,USD,0,0,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",
    "ch_j,po_j,charge,1000,USD,-1,1001,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",
    "ch_k,po_k,charge,1000,USD,60,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",  # fee + net != amount
    "ch_l,po_l,charge,1000,USD,59,941,succeeded,2026-05-01 12:00:00Z,2026-05-03\n",  # no T
    "ch_m,po_m,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00,2026-05-03\n",  # naive
    "ch_n,po_n,charge,1000,USD,59,941,succeeded,2026-02-30T12:00:00Z,2026-05-03\n",  # no such day
    "ch_o,po_o,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00+02:00,2026-05-03\r\n",  # offset, CRLF
    "ch_p,po_p,refund,1000,EUR,0,1000,failed,2026-05-01T12:00:00Z,\n",  # empty available_on
    "ch_r,po_r,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\r",  # a lone CR ends it
    "ch_s,po_s,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03",  # last line, no newline
    "ch_t,po_t,charge,99999999999,USD,59,99999999940,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",
    "ch_u,po_\u00e9,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",
    "ch_\\v,po_v\t,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",
]


def reference(number: int, lines: Sequence[str]) -> list[object]:
    """What the row-by-row reference makes of these lines: parse_fields of each non-blank line."""
    parsed: list[object] = []
    for n, line in enumerate(lines, start=number):
        text = line.rstrip("\r\n")
        if text and '"' not in text and "\x00" not in text:
            parsed.append(parse_fields(n, text.split(",")))
        elif text:
            parsed.extend(parse_lines(n, [line]))  # the csv module's path, as before
    return parsed


def test_a_block_of_plain_valid_lines_is_parsed_column_wise_to_the_same_rows() -> None:
    lines = [GOOD.format(n=n, s=n % 60) for n in range(CHUNK)]
    columns = parse_block(7, lines)
    assert columns is not None
    assert rows_of(columns) == reference(7, lines) == list(parse_lines(7, lines))


@pytest.mark.parametrize("odd", ODD_LINES)
def test_a_block_with_any_odd_line_parses_exactly_as_line_by_line(odd: str) -> None:
    lines = [GOOD.format(n=n, s=n) for n in range(3)] + [odd] + [GOOD.format(n=9, s=9)]
    columns = parse_block(2, lines)
    parsed = rows_of(columns) if columns is not None else list(parse_lines(2, lines))
    assert parsed == reference(2, lines)
    assert list(parse_lines(2, lines)) == reference(2, lines)


def test_lines_whose_fields_shift_between_them_are_not_taken_as_rows() -> None:
    # One line with a field too many and the next with one too few: ten fields on average.
    lines = [
        "ch_1,po_1,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03,ch_2\n",
        "po_2,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00Z,2026-05-03\n",
    ]
    assert parse_block(2, lines) is None
    assert [type(p).__name__ for p in parse_lines(2, lines)] == ["Malformed", "Malformed"]


def a_file(rng: random.Random, rows: int) -> tuple[str, list[Order], list[Claim]]:
    """A file of matching rows with every kind of difference sprinkled over about half of its chunks, its
    orders and the claims already stored."""
    orders: list[Order] = []
    claims: list[Claim] = []
    lines = [HEADER]
    dirty = False
    for n in range(rows):
        if n % CHUNK == 0:
            dirty = rng.random() < 0.5
        amount = 1000 + n
        fee = 0 if n % 37 == 0 else 30 + n % 50
        ref, psp = f"po_{n}", f"ch_{n}"
        decided: str | None = f"2026-05-01T12:{n % 60:02d}:00+00:00"
        status, currency, order_amount, order_psp = "SUCCEEDED", "USD", amount, psp
        roll = rng.random() if dirty else 1.0
        if roll < 0.02:
            order_amount += 1
        elif roll < 0.04:
            currency = "EUR"
        elif roll < 0.06:
            status = "FAILED"
        elif roll < 0.07:
            order_psp = "ch_other"
        elif roll < 0.08:
            decided = None
        elif roll < 0.09:
            claims.append(Claim(ref, "awaiting", "rr_old", decided_at=decided or ""))
        elif roll < 0.10:
            claims.append(Claim(ref, "settled", "rr_old", 7, psp))
        elif roll < 0.11:
            claims.append(Claim(ref, "missing", "rr_old"))
        if roll > 0.12 or rng.random() < 0.5:
            orders.append(Order(ref, status, order_amount, currency, order_psp, decided, "seller"))
        created = f"2026-05-01T12:{n % 60:02d}:{n % 59:02d}Z"
        line = f"{psp},{ref},charge,{amount},USD,{fee},{amount - fee},succeeded,{created},2026-05-03\n"
        roll = rng.random() if dirty else 1.0
        if roll < 0.03:
            line = rng.choice(ODD_LINES)
        elif roll < 0.05:
            line = line.replace("charge", "refund")
        lines.append(line)
        if roll < 0.08:
            lines.append(line)  # a duplicate, in this chunk or the next
    return "".join(lines), orders, claims


def outcome(tally: Tally) -> tuple[object, ...]:
    return (
        tally.rows,
        tally.matched,
        tally.breaks,
        tally.temporary,
        tally.closed_temporary,
        tally.settled_late,
        list(tally.settled_amounts.items()),
        list(tally.fees.items()),
        tally.first_created,
        tally.cutoff,
        tally.review,
        tally.breaks_log.contents().read(),
    )


def reconcile_both_ways(
    monkeypatch: pytest.MonkeyPatch, text: str, orders: Sequence[Order], claims: Sequence[Claim]
) -> list[tuple[object, ...]]:
    """The file through the stream path, and through the reference: `reconcile_rows` with every row
    parsed line by line and every chunk classified row by row (`all_matched`, the column-wise shortcut,
    switched off)."""
    results: list[tuple[object, ...]] = []
    for path in ("lines", "reference"):
        run = Run(run_id="rr_new", source=ObjectRef(bucket="b", key="k"), created_at="2026-05-02T00:00:00+00:00")
        order_source, claim_store, sink = Orders(orders), Claims(claims), Postings()
        lines = text.splitlines(keepends=True)
        if path == "lines":
            tally = reconcile_lines(
                run, lines, orders=order_source, claims=claim_store, postings=sink, breaks_log=SpooledBreaksCsv()
            )
        else:
            with monkeypatch.context() as patch:
                patch.setattr(classify, "all_matched", lambda *_: None)
                items = settlement_rows(lines)
                tally = reconcile_rows(
                    run, items, orders=order_source, claims=claim_store, postings=sink, breaks_log=SpooledBreaksCsv()
                )
        results.append((outcome(tally), order_source.calls, claim_store.written, sink.batches))
    return results


@pytest.mark.parametrize("seed", range(16))
def test_the_stream_path_makes_the_same_chunks_outcomes_and_port_calls_as_the_row_path(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    text, orders, claims = a_file(rng, rng.choice([1, 99, 100, 101, 350, 1000]))
    if seed % 3 == 0:
        text = text.replace("\n", "\r\n")
    by_lines, by_rows = reconcile_both_ways(monkeypatch, text, orders, claims)
    assert by_lines == by_rows


def test_clean_chunks_are_booked_whole_and_the_others_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    booked_whole: list[bool] = []

    def counted(*args: Any) -> Any:
        booked = all_matched(*args)
        booked_whole.append(booked is not None)
        return booked

    monkeypatch.setattr(classify, "all_matched", counted)
    lines = [GOOD.format(n=n, s=n % 60) for n in range(350)]
    lines[260] = "ch_x,po_x,charge,12.50,USD\n"  # a malformed line: its block is parsed line by line
    orders = [Order(f"po_{n}", "SUCCEEDED", 999 if n == 150 else 1000, "USD", f"ch_{n}", None) for n in range(350)]
    by_lines, by_rows = reconcile_both_ways(monkeypatch, HEADER + "".join(lines), orders, [])
    assert by_lines == by_rows
    # chunk 1 booked whole, chunk 2 (an amount mismatch) row by row, chunk 3 (a malformed row) row by row
    # without trying, chunk 4 booked whole
    assert booked_whole == [True, False, True]
    summary: Any = by_lines[0]
    assert summary[:3] == (350, 348, {**dict.fromkeys(BREAK_CLASSES, 0), "amount_mismatch": 1, "malformed_row": 1})


def test_the_same_file_twice_in_one_run_is_not_a_duplicate_on_the_stream_path() -> None:
    rng = random.Random(1)
    text, orders, _ = a_file(rng, 250)
    claims, postings = Claims(), Postings()
    run = Run(run_id="rr_1", source=ObjectRef(bucket="b", key="k"), created_at="2026-05-02T00:00:00+00:00")
    lines = text.splitlines(keepends=True)
    first = reconcile_lines(
        run, lines, orders=Orders(orders), claims=claims, postings=postings, breaks_log=SpooledBreaksCsv()
    )
    again = reconcile_lines(
        run, lines, orders=Orders(orders), claims=claims, postings=postings, breaks_log=SpooledBreaksCsv()
    )
    assert (again.matched, again.breaks) == (first.matched, first.breaks)


def _one_difference(kind: str) -> tuple[str, list[Order], list[Claim]]:
    lines = [GOOD.format(n=n, s=n % 60) for n in range(200)]
    orders = {
        n: Order(f"po_{n}", "SUCCEEDED", 1000, "USD", f"ch_{n}", f"2026-05-01T12:00:{n % 60:02d}+00:00")
        for n in range(200)
    }
    claims: list[Claim] = []
    if kind == "duplicate_in_chunk":
        lines[40] = lines[20]
    elif kind == "duplicate_across_chunks":
        lines[140] = lines[20]
    elif kind == "duplicate_of_another_run":
        claims.append(Claim("po_30", "settled", "rr_old", 9, "ch_30"))
    elif kind == "closes_temporary":
        claims.append(Claim("po_30", "awaiting", "rr_old", decided_at="2026-05-01T12:00:30+00:00"))
    elif kind == "other_psp_reference":
        orders[30] = orders[30]._replace(psp_reference="ch_other")
    elif kind == "no_psp_reference_yet":
        orders[30] = orders[30]._replace(psp_reference=None)
    elif kind == "unknown_order":
        del orders[30]
    elif kind == "currency":
        orders[30] = orders[30]._replace(currency="EUR")
    elif kind == "order_status":
        orders[30] = orders[30]._replace(status="PENDING")
    elif kind == "row_status":
        lines[30] = lines[30].replace("succeeded", "failed")
    elif kind == "refund":
        lines[30] = lines[30].replace("charge", "refund")
    elif kind == "no_decided_at":
        orders[30] = orders[30]._replace(decided_at=None)
    return HEADER + "".join(lines), list(orders.values()), claims


@pytest.mark.parametrize(
    "kind",
    [
        "duplicate_in_chunk",
        "duplicate_across_chunks",
        "duplicate_of_another_run",
        "closes_temporary",
        "other_psp_reference",
        "no_psp_reference_yet",
        "unknown_order",
        "currency",
        "order_status",
        "row_status",
        "refund",
        "no_decided_at",
    ],
)
def test_one_difference_in_a_clean_chunk_is_classified_as_on_the_row_path(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_lines, by_rows = reconcile_both_ways(monkeypatch, *_one_difference(kind))
    assert by_lines == by_rows
    summary: Any = by_lines[0]
    matched, breaks = summary[1], sum(summary[2].values())
    assert matched + breaks == 200 or kind == "duplicate_of_another_run"
    assert (matched, breaks) != (200, 0) or kind in ("no_psp_reference_yet", "no_decided_at", "closes_temporary")
