"""The ledger journal a settlement books: the PSP paid net into the bank and kept its fee."""

from __future__ import annotations

from typing import Literal

from functions.common.events import JournalPosting, PostingLine
from functions.ledger.accounts import BANK_CASH, PSP_FEE_EXPENSE, PSP_RECEIVABLE


def settlement_journal(run_id: str, first_line: int, currency: str, gross: int, fees: int) -> JournalPosting | None:
    """The PSP paid the matched rows of one group of lines net into the bank and kept its fees: together
    they clear those orders' receivable. The journal id derives from the run, the group's first line and
    the currency; a group is a fixed set of the file's lines (see `classify_chunk`), so a retried or
    redelivered run books nothing twice.

    A line that sums to zero (no fee, or fees that took the whole amount) is left out; a group that
    cleared nothing is no journal at all (None)."""
    amounts: tuple[tuple[str, Literal["debit", "credit"], int], ...] = (
        (BANK_CASH, "debit", gross - fees),
        (PSP_FEE_EXPENSE, "debit", fees),
        (PSP_RECEIVABLE, "credit", gross),
    )
    lines = [
        PostingLine(account=account, direction=direction, amount=amount)
        for account, direction, amount in amounts
        if amount
    ]
    if not lines:
        return None
    return JournalPosting(
        producer="reconciliation",
        kind="settlement",
        business_id=f"{run_id}:{first_line}:{currency}",
        currency=currency,
        lines=lines,
        reference=run_id,
    )
