"""The file's closing balance: its rows must sum, per currency, to the summary rows it ends with.

Checked in one streaming pass before anything of the file is claimed or booked (both paths: the stream
path reads the file again to reconcile it; a large file is checked here before its Distributed Map
starts), so a file that does not add up - rows lost in transfer, a truncated tail, a PSP error - is a
FAILED run that changed nothing, and the corrected file reconciles as if it were the first.

A file without any summary row is refused as `summary_missing`: a cut-off file must not pass as a
complete one (a day without activity still has a summary row, with zeros)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from functions.reconciliation.models import FailureReason
from functions.reconciliation.settlement_file import (
    INCOMING_TYPES,
    Row,
    Summary,
    parse_block,
    parse_lines,
    settlement_blocks,
)


class Totals(NamedTuple):
    amount: int  # signed: money in positive
    fee: int
    net: int  # signed


class BalanceProblem(NamedTuple):
    reason: FailureReason
    detail: str


def file_totals(lines: Iterable[str]) -> tuple[dict[str, Totals], dict[str, list[Summary]]]:
    """Each currency's signed sums over the file's valid rows (malformed rows are breaks, not in any sum),
    and its summary rows. Raises NotASettlementFile (lazily) if the header is not the contract's."""
    amounts: dict[str, int] = {}
    fees: dict[str, int] = {}
    nets: dict[str, int] = {}
    summaries: dict[str, list[Summary]] = {}
    for number, block in settlement_blocks(lines):
        columns = parse_block(number, block)
        if columns is not None:
            rows: Iterable[tuple[str, str, int, int, int]] = zip(
                columns.types, columns.currencies, columns.amounts, columns.fees, columns.nets, strict=True
            )
        else:
            parsed = list(parse_lines(number, block))
            for item in parsed:
                if type(item) is Summary:
                    summaries.setdefault(item.currency, []).append(item)
            rows = ((r.type, r.currency, r.amount, r.fee, r.net) for r in parsed if type(r) is Row)
        for kind, currency, amount, fee, net in rows:
            sign = 1 if kind in INCOMING_TYPES else -1
            amounts[currency] = amounts.get(currency, 0) + sign * amount
            fees[currency] = fees.get(currency, 0) + fee
            nets[currency] = nets.get(currency, 0) + sign * net
    totals = {c: Totals(amounts[c], fees[c], nets[c]) for c in amounts}
    return totals, summaries


def check_closing_balance(lines: Iterable[str]) -> BalanceProblem | None:
    """None if every currency's rows sum to its one summary row; else what is wrong."""
    totals, summaries = file_totals(lines)
    if not summaries:
        return BalanceProblem("summary_missing", "the file has no summary row: it may be truncated")
    problems: list[str] = []
    for currency in sorted(set(totals) | set(summaries)):
        found = summaries.get(currency, [])
        rows = totals.get(currency, Totals(0, 0, 0))
        if not found:
            problems.append(f"{currency}: rows sum to net {rows.net} but there is no summary row")
        elif len(found) > 1:
            problems.append(f"{currency}: {len(found)} summary rows (lines {', '.join(str(s.line) for s in found)})")
        elif (found[0].amount, found[0].fee, found[0].net) != rows:
            summary = found[0]
            problems.append(
                f"{currency}: rows sum to net {rows.net} (amount {rows.amount}, fee {rows.fee}); the summary "
                f"(line {summary.line}) says net {summary.net} (amount {summary.amount}, fee {summary.fee})"
            )
    if problems:
        return BalanceProblem("balance_mismatch", "; ".join(problems)[:1000])
    return None
