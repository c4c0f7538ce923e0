"""Double-entry ledger: balanced journals with deterministic ids, append-only."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

from pydantic import BaseModel

from functions.common.backoff import TransientError
from functions.common.clock import iso, utc_now
from functions.common.events import JournalPosting, OrderCharged, OrderStatusChanged
from functions.common.ids import deterministic_id
from functions.ledger.accounts import (
    PLATFORM_REVENUE,
    PSP_RECEIVABLE,
    SELLER_PENDING_FORMAT,
    seller_payable,
    seller_pending,
)
from functions.ledger.policy import PostingRefused, check_posting

Direction = Literal["debit", "credit"]

_PENDING_PREFIX = SELLER_PENDING_FORMAT.format("")


class Entry(BaseModel):
    entry_id: str
    journal_id: str
    account: str
    direction: Direction
    amount: int
    currency: str
    payment_order_id: str | None = None
    reference: str | None = None
    created_at: str


class UnbalancedJournal(ValueError):
    pass


class JournalConflict(ValueError):
    """A journal id arrived again with other content than it was booked with: never an idempotent repeat,
    and never booked over the first. It goes to the DLQ and raises an alarm."""


def entry_id_for(journal_id: str, line: int) -> str:
    return deterministic_id("le", journal_id, str(line))


def journal(
    kind: str,
    business_id: str,
    lines: Sequence[tuple[str, Direction, int]],
    *,
    currency: str,
    payment_order_id: str | None,
    created_at: str,
    reference: str | None = None,
) -> list[Entry]:
    """Entries of one journal; ids derive from (kind, business id, line) so retries rewrite nothing."""
    debits = sum(amount for _, direction, amount in lines if direction == "debit")
    credits = sum(amount for _, direction, amount in lines if direction == "credit")
    if debits != credits or debits <= 0:
        raise UnbalancedJournal(f"{kind} {business_id}: debits {debits} != credits {credits}")
    journal_id = deterministic_id("jr", kind, business_id)
    return [
        Entry(
            entry_id=entry_id_for(journal_id, line),
            journal_id=journal_id,
            account=account,
            direction=direction,
            amount=amount,
            currency=currency,
            payment_order_id=payment_order_id,
            reference=reference,
            created_at=created_at,
        )
        for line, (account, direction, amount) in enumerate(lines)
    ]


def charge_journal(charge: OrderCharged, *, created_at: str) -> list[Entry]:
    """The PSP owes us the charged amount; we owe the seller their share of it, and the commission is the
    platform's revenue. A zero share is left out (a commission of the whole amount, or none at all)."""
    lines: list[tuple[str, Direction, int]] = [(PSP_RECEIVABLE, "debit", charge.amount)]
    if charge.seller_amount:
        # A held order's share is owed once it is fulfilled: it waits in seller_pending until its release.
        owed = seller_pending if charge.hold == "until_fulfilled" else seller_payable
        lines.append((owed(charge.seller_id), "credit", charge.seller_amount))
    if charge.application_fee:
        lines.append((PLATFORM_REVENUE, "credit", charge.application_fee))
    return journal(
        "charge",
        charge.payment_order_id,
        lines,
        currency=charge.currency,
        payment_order_id=charge.payment_order_id,
        created_at=created_at,
    )


def posting_journal(posting: JournalPosting, *, created_at: str) -> list[Entry]:
    """Any service's balanced posting (settlement, payout, reversal) as journal entries."""
    return journal(
        posting.kind,
        posting.business_id,
        [(line.account, line.direction, line.amount) for line in posting.lines],
        currency=posting.currency,
        payment_order_id=posting.payment_order_id,
        reference=posting.reference,
        created_at=created_at,
    )


class LedgerStore(Protocol):
    def append(self, entries: Sequence[Entry]) -> bool:
        """Write all entries atomically, each only if absent; False if the journal was already there."""

    def by_account(self, account: str) -> list[Entry]: ...

    def by_payment_order(self, payment_order_id: str) -> list[Entry]: ...

    def all_entries(self) -> Iterable[Entry]: ...


class JournalReader(Protocol):
    def entries(self, entry_ids: Sequence[str]) -> list[Entry]:
        """The stored entries among these ids (absent ones are left out)."""


class Publisher(Protocol):
    def publish(self, message: BaseModel) -> None: ...


def _content(entry: Entry) -> tuple[str, str, str, int, str, str | None, str | None]:
    # Everything an entry books, without when it was written.
    return (
        entry.entry_id,
        entry.account,
        entry.direction,
        entry.amount,
        entry.currency,
        entry.payment_order_id,
        entry.reference,
    )


def append_once(entries: Sequence[Entry], *, store: LedgerStore, journals: JournalReader) -> bool:
    """Append a journal; True if booked now, False if this very journal was booked before. The same id
    with any other content (another amount, account, currency or number of lines) is a JournalConflict."""
    if store.append(entries):
        return True
    journal_id = entries[0].journal_id
    # One id past the last line too: a stored journal with more lines is another journal.
    stored = journals.entries([*(e.entry_id for e in entries), entry_id_for(journal_id, len(entries))])
    if not stored:
        # The append was refused, yet nothing of the journal is stored: not a repeat; try again later.
        raise TransientError(f"journal {journal_id} was refused but is not stored")
    if sorted(map(_content, stored)) != sorted(map(_content, entries)):
        raise JournalConflict(f"journal {journal_id} arrived again with different content")
    return False


def book_charge(charge: OrderCharged, *, store: LedgerStore, journals: JournalReader, order_status: Publisher) -> bool:
    appended = append_once(charge_journal(charge, created_at=iso(utc_now())), store=store, journals=journals)
    # Charges reach the ledger only from the wallet, after their credit: both are done now.
    order_status.publish(
        OrderStatusChanged(
            payment_id=charge.payment_id,
            payment_order_id=charge.payment_order_id,
            wallet_updated=True,
            ledger_updated=True,
        )
    )
    return appended


def book_posting(posting: JournalPosting, *, store: LedgerStore, journals: JournalReader) -> bool:
    """Book a posting once. One outside its producer's authority raises PostingRefused, an unbalanced one
    UnbalancedJournal, and one whose id was booked with other content JournalConflict (each to the DLQ)."""
    check_posting(posting)
    check_order_bounded_lines(posting, store=store)
    return append_once(posting_journal(posting, created_at=iso(utc_now())), store=store, journals=journals)


def _bounded_by_the_charge(account: str) -> bool:
    """Accounts a posting against an order may move by at most what the order's charge credited them: the
    platform's commission, and a held order's share still pending."""
    return account == PLATFORM_REVENUE or account.startswith(_PENDING_PREFIX)


def check_order_bounded_lines(posting: JournalPosting, *, store: LedgerStore) -> None:
    """A posting against an order (a refund's, a hold's release) may move `platform_revenue` by at most the
    commission the order's charge journal booked there, and `seller_pending:<seller>` by at most the held
    share it booked there; by nothing if it booked none. So no producer can take more of the platform's
    revenue, or release more of a seller's held money, for an order than that order brought. A charge journal
    not booked yet (its credit and the posting travel on different queues) is waited for: TransientError,
    the message is retried."""
    moved: dict[str, int] = {}
    for line in posting.lines:
        if _bounded_by_the_charge(line.account):
            moved[line.account] = max(moved.get(line.account, 0), line.amount)
    if not moved or posting.payment_order_id is None:
        return
    charge_id = deterministic_id("jr", "charge", posting.payment_order_id)
    charge = [e for e in store.by_payment_order(posting.payment_order_id) if e.journal_id == charge_id]
    if not charge:
        raise TransientError(f"{posting.kind} {posting.business_id}: the charge of its order is not booked yet")
    for account, amount in moved.items():
        booked = sum(e.amount for e in charge if e.account == account and e.direction == "credit")
        if amount > booked:
            what = "commission" if account == PLATFORM_REVENUE else "held share"
            raise PostingRefused(
                f"{posting.kind} {posting.business_id}: moves {amount} of {account}, more than the "
                f"order's {what} of {booked}"
            )


class CurrencyTotals(BaseModel):
    debits: int = 0
    credits: int = 0


class TrialBalance(BaseModel):
    currencies: dict[str, CurrencyTotals]
    balanced: bool


def trial_balance(entries: Iterable[Entry]) -> TrialBalance:
    totals: dict[str, CurrencyTotals] = defaultdict(CurrencyTotals)
    for entry in entries:
        bucket = totals[entry.currency]
        if entry.direction == "debit":
            bucket.debits += entry.amount
        else:
            bucket.credits += entry.amount
    return TrialBalance(currencies=dict(totals), balanced=all(t.debits == t.credits for t in totals.values()))
