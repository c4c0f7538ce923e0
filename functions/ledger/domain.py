"""Double-entry ledger: balanced journals with deterministic ids, append-only."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

from pydantic import BaseModel

from functions.common.clock import iso, utc_now
from functions.common.events import JournalPosting, OrderCharged, OrderStatusChanged
from functions.common.ids import deterministic_id
from functions.ledger.accounts import PSP_RECEIVABLE, seller_payable

Direction = Literal["debit", "credit"]


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
            entry_id=deterministic_id("le", journal_id, str(line)),
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
    """The PSP owes us the charged amount; we owe it to the seller."""
    return journal(
        "charge",
        charge.payment_order_id,
        [(PSP_RECEIVABLE, "debit", charge.amount), (seller_payable(charge.seller_id), "credit", charge.amount)],
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


class Publisher(Protocol):
    def publish(self, message: BaseModel) -> None: ...


def book_charge(charge: OrderCharged, *, store: LedgerStore, order_status: Publisher) -> bool:
    appended = store.append(charge_journal(charge, created_at=iso(utc_now())))
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


def book_posting(posting: JournalPosting, *, store: LedgerStore) -> bool:
    """Book a posting once; an unbalanced one raises UnbalancedJournal (the message goes to the DLQ)."""
    return store.append(posting_journal(posting, created_at=iso(utc_now())))


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
