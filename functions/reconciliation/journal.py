"""The ledger journals a settlement books: money in (the PSP paid net into the bank and kept its fee) and
money out (refunds, payouts and disputes the PSP paid from our balance with it, so less reached the bank)."""

from __future__ import annotations

from typing import Literal

from functions.common.events import JournalPosting, PostingLine
from functions.ledger.accounts import BANK_CASH, PSP_FEE_EXPENSE, PSP_RECEIVABLE

Lines = tuple[tuple[str, Literal["debit", "credit"], int], ...]


def settlement_journal(run_id: str, first_line: int, currency: str, gross: int, fees: int) -> JournalPosting | None:
    """The PSP paid the matched money-in rows (charges, won disputes' reversals) of one group of lines net
    into the bank and kept its fees: together they clear that receivable. The journal id derives from the
    run, the group's first line and the currency; a group is a fixed set of the file's lines (see
    `classify_chunk`), so a retried or redelivered run books nothing twice.

    A line that sums to zero (no fee, or fees that took the whole amount) is left out; a group that
    cleared nothing is no journal at all (None)."""
    amounts: Lines = (
        (BANK_CASH, "debit", gross - fees),
        (PSP_FEE_EXPENSE, "debit", fees),
        (PSP_RECEIVABLE, "credit", gross),
    )
    return _journal("settlement", run_id, first_line, currency, amounts)


def cash_out_journal(run_id: str, first_line: int, currency: str, cleared: int, fees: int) -> JournalPosting | None:
    """The PSP paid the matched money-out rows of one group of lines (refunds, payouts, disputes) from our
    balance with it: what their own journals took off the receivable (the refund, the payout's cash-out,
    the dispute's amount and fee) is cleared against the bank, which received that much less, plus any
    fee the PSP charged us for them. Same ids and rules as `settlement_journal`, under its own kind."""
    amounts: Lines = (
        (PSP_RECEIVABLE, "debit", cleared),
        (PSP_FEE_EXPENSE, "debit", fees),
        (BANK_CASH, "credit", cleared + fees),
    )
    return _journal("settlement_cash_out", run_id, first_line, currency, amounts)


def _journal(kind: str, run_id: str, first_line: int, currency: str, amounts: Lines) -> JournalPosting | None:
    lines = [
        PostingLine(account=account, direction=direction, amount=amount)
        for account, direction, amount in amounts
        if amount
    ]
    if not lines:
        return None
    return JournalPosting(
        producer="reconciliation",
        kind=kind,
        business_id=f"{run_id}:{first_line}:{currency}",
        currency=currency,
        lines=lines,
        reference=run_id,
    )
