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
from functions.common.refund_events import REFUND_ID_PATTERN
from functions.ledger.accounts import (
    BANK_CASH,
    DISPUTE_RESERVE_FORMAT,
    PAYOUT_IN_TRANSIT_FORMAT,
    PLATFORM_REVENUE,
    PSP_FEE_EXPENSE,
    PSP_RECEIVABLE,
    SELLER_PAYABLE_FORMAT,
    SELLER_PENDING_FORMAT,
)

Producer = Literal["reconciliation", "payouts", "disputes", "wallet"]
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
    # Whether the journal books against one payment order (a refund of it): then it must name the order.
    books_order: bool = False


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


def _dispute_ids(posting: JournalPosting) -> str | None:
    # business_id = the dispute id (functions.disputes.domain.dispute_id_for)
    if not re.fullmatch(r"dp_[0-9a-f]{32}", posting.business_id):
        return "business_id is not a dispute id"
    if posting.reference != posting.business_id:
        return "reference must be the dispute id"
    return None


def _dispute(*lines: tuple[str, Direction], optional: frozenset[int] = frozenset()) -> KindRule:
    return KindRule(
        producer="disputes",
        lines=tuple(LineRule(_account(template), direction) for template, direction in lines),
        optional=optional,
        check_ids=_dispute_ids,
    )


def _refund_ids(posting: JournalPosting) -> str | None:
    if not re.fullmatch(REFUND_ID_PATTERN, posting.business_id):
        return "business_id is not a refund id"
    if posting.reference != posting.business_id:
        return "reference must be the refund id"
    return None


def _hold_release_ids(posting: JournalPosting) -> str | None:
    # business_id = the held order's id (one release per order).
    if posting.business_id != posting.payment_order_id:
        return "business_id must be the payment order id"
    if posting.reference != posting.business_id:
        return "reference must be the payment order id"
    return None


def _refund(*lines: tuple[str, Direction], optional: frozenset[int]) -> KindRule:
    return KindRule(
        producer="wallet",
        lines=tuple(LineRule(_account(template), direction) for template, direction in lines),
        optional=optional,
        check_ids=_refund_ids,
        books_order=True,
    )


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
    # The disputes worker (functions/disputes/domain.py): a seller's money held while a dispute is open
    # (amount + fee), then given back (won: the amount; the PSP keeps the fee) or gone to the buyer (lost).
    # A held order's dispute is taken from its hold first (seller_pending), and given back there while it lasts.
    "dispute_reserve": _dispute(
        (SELLER_PAYABLE_FORMAT, "debit"),
        (SELLER_PENDING_FORMAT, "debit"),
        (DISPUTE_RESERVE_FORMAT, "credit"),
        optional=frozenset({0, 1}),
    ),
    "dispute_won": _dispute(
        (DISPUTE_RESERVE_FORMAT, "debit"),
        (SELLER_PAYABLE_FORMAT, "credit"),
        (SELLER_PENDING_FORMAT, "credit"),
        (PSP_RECEIVABLE, "credit"),
        optional=frozenset({1, 2, 3}),
    ),
    "dispute_lost": _dispute((DISPUTE_RESERVE_FORMAT, "debit"), (PSP_RECEIVABLE, "credit")),
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
    # The reconciliation again: refunds, payouts and disputes the PSP paid from our balance with it.
    "settlement_cash_out": KindRule(
        producer="reconciliation",
        lines=(
            LineRule(_account(PSP_RECEIVABLE), "debit"),
            LineRule(_account(PSP_FEE_EXPENSE), "debit"),
            LineRule(_account(BANK_CASH), "credit"),
        ),
        optional=frozenset({0, 1}),
        check_ids=_settlement_ids,
    ),
    # The wallet (functions/wallet/refunds.py), after it debited a refund, or restored one the PSP failed: the
    # seller's part and the commission's part (either may be nothing, not both: a journal is never empty).
    # A held order's refund takes the seller's part from what is still held first (seller_pending).
    "refund": _refund(
        (SELLER_PAYABLE_FORMAT, "debit"),
        (SELLER_PENDING_FORMAT, "debit"),
        (PLATFORM_REVENUE, "debit"),
        (PSP_RECEIVABLE, "credit"),
        optional=frozenset({0, 1, 2}),
    ),
    "refund_reversal": _refund(
        (PSP_RECEIVABLE, "debit"),
        (SELLER_PAYABLE_FORMAT, "credit"),
        (SELLER_PENDING_FORMAT, "credit"),
        (PLATFORM_REVENUE, "credit"),
        optional=frozenset({1, 2, 3}),
    ),
    # The wallet (functions/wallet/holds.py): a held order's share, fulfilled or at the end of its hold period.
    "hold_release": KindRule(
        producer="wallet",
        lines=(LineRule(_account(SELLER_PENDING_FORMAT), "debit"), LineRule(_account(SELLER_PAYABLE_FORMAT), "credit")),
        optional=frozenset(),
        check_ids=_hold_release_ids,
        books_order=True,
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
    allows. Only a refund's journals book against a payment order (and must name it); no other posting may."""
    rule = ALLOWED_KINDS.get(posting.kind)
    if rule is None:
        raise PostingRefused(f"kind {posting.kind!r} may not be posted to the ledger's postings queue")
    if posting.producer != rule.producer:
        raise PostingRefused(f"kind {posting.kind!r} belongs to {rule.producer}, not to {posting.producer!r}")
    if (posting.payment_order_id is not None) != rule.books_order:
        verb = "must name" if rule.books_order else "does not book against"
        raise PostingRefused(f"kind {posting.kind!r} {verb} a payment order")
    problem = rule.check_ids(posting) or _match_lines(posting, rule)
    if problem is not None:
        raise PostingRefused(f"{posting.kind} {posting.business_id}: {problem}")
