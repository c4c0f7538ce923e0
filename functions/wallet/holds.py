"""Fulfilment holds: a held order's share is credited to the seller's `pending` balance (booked to
seller_pending), and moves to `available` (seller_payable) once - when the marketplace confirms fulfilment,
or when the hold period ends, whichever comes first.

The release is one conditional transaction in the wallet (the hold HELD -> RELEASED, pending -> available),
then its `hold_release` journal goes to the ledger. A redelivered release finds the hold RELEASED and re-sends
only the journal (the ledger books each journal id once), so a crash between the two strands nothing.
Refunds take from the hold's pending share first (functions/wallet/store.py), so a release moves what is
left of it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel

from functions.common.backoff import TransientError
from functions.common.clock import iso
from functions.common.events import JournalPosting, OrderCharged, PostingLine, ReleaseHold
from functions.ledger.accounts import seller_payable, seller_pending

# The ledger postings producer name of the wallet (functions/ledger/policy.py).
PRODUCER = "wallet"
HOLD_RELEASE_JOURNAL = "hold_release"

# NONE: the order was credited to `available` at once (no hold to release).
HoldStatus = Literal["NONE", "HELD", "RELEASED"]


class HeldShare(BaseModel):
    """Where a held order's credit waits: until `release_after`, on the due index under `due_day`."""

    release_after: str
    due_day: str


class Hold(BaseModel):
    """An order's hold as the wallet stores it (on the order's charge marker)."""

    seller_id: str
    payment_order_id: str
    currency: str
    status: HoldStatus
    pending: int = 0  # what of the share is still held
    released: int = 0  # what the release moved to available


class HoldNotCredited(TransientError):
    """A release for an order the wallet has not credited yet (its credit travels on another queue): the
    message is retried until the credit lands."""


class HoldStore(Protocol):
    def release_once(self, *, seller_id: str, payment_order_id: str, reason: str) -> Hold | None:
        """Release the hold if it is HELD (pending -> available, atomically); return the hold as stored
        after it, or None if the order's credit is not stored."""

    def due_holds(self, due_day: str, *, until: str) -> Iterator[tuple[str, str]]:
        """(seller_id, payment_order_id) of each hold on the due index under `due_day` due by `until`."""


class Publisher(Protocol):
    def publish(self, message: BaseModel) -> None: ...


class BatchPublisher(Protocol):
    def publish_many(self, messages: Sequence[BaseModel]) -> None: ...


def held_share(charge: OrderCharged, *, credited_at: datetime, hold_days: int) -> HeldShare | None:
    """The hold of a charged order: None when its share goes to `available` at once."""
    if charge.hold != "until_fulfilled":
        return None
    release_after = credited_at + timedelta(days=hold_days)
    return HeldShare(release_after=iso(release_after), due_day=release_after.date().isoformat())


def release_posting(hold: Hold) -> JournalPosting | None:
    """The hold_release journal: the seller's money moves from held to payable. None when nothing was left
    to move (refunds took the whole pending share): a journal is never empty."""
    if hold.status != "RELEASED" or hold.released == 0:
        return None
    return JournalPosting(
        producer=PRODUCER,
        kind=HOLD_RELEASE_JOURNAL,
        business_id=hold.payment_order_id,
        currency=hold.currency,
        lines=[
            PostingLine(account=seller_pending(hold.seller_id), direction="debit", amount=hold.released),
            PostingLine(account=seller_payable(hold.seller_id), direction="credit", amount=hold.released),
        ],
        payment_order_id=hold.payment_order_id,
        reference=hold.payment_order_id,
    )


def release_hold(message: ReleaseHold, *, store: HoldStore, ledger: Publisher) -> Hold:
    """Release an order's hold once (any number of deliveries, from fulfilment and the sweep alike)."""
    hold = store.release_once(
        seller_id=message.seller_id, payment_order_id=message.payment_order_id, reason=message.reason
    )
    if hold is None:
        raise HoldNotCredited(f"order {message.payment_order_id} is not credited yet; its release is retried")
    posting = release_posting(hold)
    # Re-sent on redelivery too: a crash after the wallet's transaction must not strand the journal.
    if posting is not None:
        ledger.publish(posting)
    return hold


def due_days(now: datetime, *, lookback_days: int) -> Iterable[str]:
    """The due index's day buckets a sweep at `now` reads: today and `lookback_days` before it."""
    today = now.date()
    return [(today - timedelta(days=back)).isoformat() for back in range(lookback_days, -1, -1)]


def sweep_due_holds(now: datetime, *, lookback_days: int, store: HoldStore, holds_queue: BatchPublisher) -> int:
    """Ask for the release of every hold whose period is over by `now`; returns how many were asked. A
    hold asked twice (by two sweeps, or after fulfilment) is released once; one the sweep dies before
    asking for stays on the index for the next sweep."""
    asked = 0
    until = iso(now)
    for day in due_days(now, lookback_days=lookback_days):
        releases = [
            ReleaseHold(payment_order_id=payment_order_id, seller_id=seller_id, reason="expired")
            for seller_id, payment_order_id in store.due_holds(day, until=until)
        ]
        holds_queue.publish_many(releases)
        asked += len(releases)
    return asked
