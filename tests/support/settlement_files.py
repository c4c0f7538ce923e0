"""Settlement files for tests: the contract's header, rows, and the summary rows a complete file ends
with (one per currency: the signed sums of its valid rows; money in positive)."""

from __future__ import annotations

from functions.reconciliation.settlement_file import INCOMING_TYPES, SETTLEMENT_COLUMNS, Row
from tests.support.reconciliation_reference import settlement_rows

HEADER = ",".join(SETTLEMENT_COLUMNS) + "\n"


def summary_line(currency: str, amount: int, fee: int, *, period: str = "2026-05-01") -> str:
    """A summary row: `amount` and the net are signed (net = amount - fee)."""
    return f"summary,{period},summary,{amount},{currency},{fee},{amount - fee},closing,{period}T23:59:59Z,\n"


def with_summary(text: str, *, period: str = "2026-05-01", default_currency: str = "USD") -> str:
    """`text` (a header and rows) with its summary rows appended: each currency's valid rows summed
    (malformed rows are in no sum); a file without valid rows gets one zero summary."""
    totals: dict[str, list[int]] = {}
    for parsed in settlement_rows(text.splitlines(keepends=True)):
        if type(parsed) is Row:
            sign = 1 if parsed.type in INCOMING_TYPES else -1
            amount_fee = totals.setdefault(parsed.currency, [0, 0])
            amount_fee[0] += sign * parsed.amount
            amount_fee[1] += parsed.fee
    if not totals:
        totals[default_currency] = [0, 0]
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "".join(summary_line(c, a, f, period=period) for c, (a, f) in sorted(totals.items()))
