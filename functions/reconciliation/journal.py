"""The ledger journal a settlement books: the PSP paid net into the bank and kept its fee."""

from __future__ import annotations

from functions.common.events import JournalPosting, PostingLine
from functions.ledger.accounts import BANK_CASH, PSP_FEE_EXPENSE, PSP_RECEIVABLE


def settlement_journal(run_id: str, first_line: int, currency: str, gross: int, fees: int) -> JournalPosting:
    """The PSP paid the matched rows of one group of lines net into the bank and kept its fees: together
    they clear those orders' receivable. The journal id derives from the run, the group's first line and
    the currency; a group is a fixed set of the file's lines (see `classify_chunk`), so a retried or
    redelivered run books nothing twice."""
    lines = [PostingLine(account=BANK_CASH, direction="debit", amount=gross - fees)]
    if fees:
        lines.append(PostingLine(account=PSP_FEE_EXPENSE, direction="debit", amount=fees))
    lines.append(PostingLine(account=PSP_RECEIVABLE, direction="credit", amount=gross))
    return JournalPosting(
        kind="settlement",
        business_id=f"{run_id}:{first_line}:{currency}",
        currency=currency,
        lines=lines,
        reference=run_id,
    )
