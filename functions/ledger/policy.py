"""Who may post what to the ledger's postings queue: each journal kind belongs to one producer and may
touch only the accounts, on the sides, its allow-list names. Anything else is refused (to the DLQ).

A charge journal never comes this way: charges reach the ledger from the wallet, on their own queue,
with the journal id derived from the order they book. So no posting can take over an order's journal."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from functions.common.events import JournalPosting
from functions.ledger.accounts import (
    BANK_CASH,
    PAYOUT_IN_TRANSIT_FORMAT,
    PSP_FEE_EXPENSE,
    PSP_RECEIVABLE,
    SELLER_PAYABLE_FORMAT,
)

Producer = Literal["reconciliation", "payouts"]
Direction = Literal["debit", "credit"]
_SELLER = r"(?P<seller>[A-Za-z0-9_-]{1,64})"
# A payout's or settlement run's id (their services' deterministic ids).
_BUSINESS_ID = r"[A-Za-z0-9_-]{1,80}"


class PostingRefused(ValueError):
    """A posting outside its producer's authority: never booked, and never retried into success."""


def _account(template: str) -> re.Pattern[str]:
    """An account-name pattern from an accounts template: `seller_payable:{}` matches any seller's."""
    literal, placeholder, rest = template.partition("{}")
    return re.compile(re.escape(literal) + (_SELLER + re.escape(rest) if placeholder else ""))


@dataclass(frozen=True)
class LineRule:
    account: re.Pattern[str]
    direction: Direction


@dataclass(frozen=True)
class KindRule:
    producer: Producer
    # The lines a journal of this kind may have, in this order; `optional` ones may be left out (a zero line).
    lines: tuple[LineRule, ...]
    optional: frozenset[int]
    # Checks on the ids: a message explains what is wrong, None when it is right.
    check_ids: Callable[[JournalPosting], str | None]


def _payout_ids(posting: JournalPosting) -> str | None:
    if not re.fullmatch(_BUSINESS_ID, posting.business_id):
        return "business_id is not a payout id"
    if posting.reference != posting.business_id:
        return "reference must be the payout id"
    return None


def _settlement_ids(posting: JournalPosting) -> str | None:
    # business_id = "<run_id>:<first line>:<currency>" (functions.reconciliation.journal)
    found = re.fullmatch(
        rf"(?P<run>{_BUSINESS_ID}):(?P<line>[0-9]{{1,9}}):(?P<currency>[A-Z]{{3}})", posting.business_id
    )
    if found is None:
        return "business_id is not <run_id>:<line>:<currency>"
    if found["currency"] != posting.currency:
        return "business_id names another currency"
    if posting.reference != found["run"]:
        return "reference must be the settlement run id"
    return None


def _payout(debit: str, credit: str) -> KindRule:
    return KindRule(
        producer="payouts",
        lines=(LineRule(_account(debit), "debit"), LineRule(_account(credit), "credit")),
        optional=frozenset(),
        check_ids=_payout_ids,
    )


ALLOWED_KINDS: dict[str, KindRule] = {
    # The payout saga (infra/constructs/payout_saga.py): one seller's money on its way out, or back.
    "payout_in_transit": _payout(SELLER_PAYABLE_FORMAT, PAYOUT_IN_TRANSIT_FORMAT),
    "payout_cash_out": _payout(PAYOUT_IN_TRANSIT_FORMAT, PSP_RECEIVABLE),
    "payout_reversal": _payout(PAYOUT_IN_TRANSIT_FORMAT, SELLER_PAYABLE_FORMAT),
    # The reconciliation (functions/reconciliation/journal.py): the PSP paid net and kept its fees.
    "settlement": KindRule(
        producer="reconciliation",
        lines=(
            LineRule(_account(BANK_CASH), "debit"),
            LineRule(_account(PSP_FEE_EXPENSE), "debit"),
            LineRule(_account(PSP_RECEIVABLE), "credit"),
        ),
        optional=frozenset({0, 1}),
        check_ids=_settlement_ids,
    ),
}


def _match_lines(posting: JournalPosting, rule: KindRule) -> str | None:
    """Each line must match the next rule in order (optional rules may be skipped), and a journal that
    names a seller names only one."""
    sellers: set[str] = set()
    position = 0
    for index, line in enumerate(posting.lines):
        found: re.Match[str] | None = None
        while found is None and position < len(rule.lines):
            candidate = rule.lines[position]
            if candidate.direction == line.direction:
                found = candidate.account.fullmatch(line.account)
            if found is None:
                if position not in rule.optional:
                    break
                position += 1
        if found is None:
            return f"lines[{index}] ({line.direction} {line.account}) is not allowed here"
        if "seller" in found.groupdict():
            sellers.add(found["seller"])
        position += 1
    missing = [i for i in range(position, len(rule.lines)) if i not in rule.optional]
    if missing:
        return f"a {rule.lines[missing[0]].direction} line is missing"
    if len(sellers) > 1:
        return "the lines name more than one seller"
    return None


def check_posting(posting: JournalPosting) -> None:
    """Raise PostingRefused unless the posting's producer owns its kind and every line is one the kind
    allows; a posting from these producers is never about one order, so it carries no payment_order_id."""
    rule = ALLOWED_KINDS.get(posting.kind)
    if rule is None:
        raise PostingRefused(f"kind {posting.kind!r} may not be posted to the ledger's postings queue")
    if posting.producer != rule.producer:
        raise PostingRefused(f"kind {posting.kind!r} belongs to {rule.producer}, not to {posting.producer!r}")
    if posting.payment_order_id is not None:
        raise PostingRefused(f"kind {posting.kind!r} does not book against a payment order")
    problem = rule.check_ids(posting) or _match_lines(posting, rule)
    if problem is not None:
        raise PostingRefused(f"{posting.kind} {posting.business_id}: {problem}")
