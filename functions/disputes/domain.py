"""Disputes: the PSP takes a disputed charge back (with its dispute fee) and later decides who keeps it.

Money, exactly once, in any order of the PSP's events:
- opened: the seller's `available` gives amount + fee to `reserved`, in the transaction that creates the
  dispute record (so a redelivered notice finds the record and moves nothing); booked as `dispute_reserve`
  (seller_payable debit, dispute_reserve credit). A held order's dispute takes from its hold first (the
  seller's `pending`, seller_pending), conditional on the hold as read; the record keeps `from_pending`;
- won: `reserved` gives the amount back to `available` (to the hold, up to what was taken from it, while
  the hold lasts: `to_pending`); the fee, which the PSP keeps, leaves `reserved` (dispute_reserve debit;
  seller_payable / seller_pending credit the amount, psp_receivable credit the fee);
- lost: amount and fee leave `reserved` for the buyer and the PSP (dispute_reserve debit, psp_receivable
  credit: the PSP already took them from what it owes us).
Each close moves the record OPEN -> WON/LOST with its wallet change in one transaction. A close that
arrives before the opening opens the dispute first, from the same notice, so the later opening is a
repeat. The journals are (re)sent after every notice, with ids derived from the dispute id and kind: a
crash between the transaction and the posting leaves nothing undone that a redelivery does not finish."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel

from functions.common.clock import iso, utc_now
from functions.common.errors import NotFound
from functions.common.events import JournalPosting, PostingLine
from functions.common.ids import deterministic_id
from functions.disputes.models import STATUS_OF, Dispute, DisputeList, DisputeNotice, DisputeView
from functions.ledger.accounts import PSP_RECEIVABLE, dispute_reserve, seller_payable, seller_pending

PRODUCER = "disputes"
Line = tuple[str, Literal["debit", "credit"], int]


class DisputeConflict(ValueError):
    """A notice that contradicts the stored dispute (other money, or another outcome for a closed one):
    never applied over it; it goes to the dead-letter queue, which alarms."""


class DisputeReader(Protocol):
    def get(self, dispute_id: str) -> Dispute | None: ...

    def by_payment_order(self, payment_order_id: str) -> list[Dispute]: ...


class DisputeStore(DisputeReader, Protocol):
    def open_once(self, dispute: Dispute) -> bool:
        """Store the OPEN dispute and move its amount + fee from available to reserved, atomically; False
        (nothing moved) if the dispute is already stored."""

    def close_once(self, dispute: Dispute) -> bool:
        """Move the stored dispute OPEN -> `dispute.status` with its wallet change, atomically; False
        (nothing moved) if it is no longer OPEN."""


class Publisher(Protocol):
    def publish(self, message: BaseModel) -> None: ...


def dispute_id_for(psp_dispute_id: str) -> str:
    """Our id of the PSP's dispute: derived from it, so every notice of one dispute names one record."""
    return deterministic_id("dp", psp_dispute_id)


def opened(notice: DisputeNotice, *, created_at: str) -> Dispute:
    return Dispute(
        dispute_id=dispute_id_for(notice.psp_dispute_id),
        payment_order_id=notice.payment_order_id,
        psp_dispute_id=notice.psp_dispute_id,
        seller_id=notice.seller_id,
        amount=notice.amount,
        fee=notice.fee,
        currency=notice.currency,
        status="OPEN",
        reason=notice.reason,
        created_at=created_at,
    )


def _same_money(stored: Dispute, notice: DisputeNotice) -> bool:
    return (stored.payment_order_id, stored.seller_id, stored.amount, stored.fee, stored.currency) == (
        notice.payment_order_id,
        notice.seller_id,
        notice.amount,
        notice.fee,
        notice.currency,
    )


def _posting(dispute: Dispute, kind: str, lines: list[Line]) -> JournalPosting:
    return JournalPosting(
        producer=PRODUCER,
        kind=kind,
        business_id=dispute.dispute_id,
        currency=dispute.currency,
        lines=[
            PostingLine(account=account, direction=direction, amount=amount)
            for account, direction, amount in lines
            if amount > 0  # a zero fee line is left out, never sent
        ],
        reference=dispute.dispute_id,
    )


def postings_for(dispute: Dispute) -> list[JournalPosting]:
    """Every journal the dispute's state has booked so far (the same content each time it is asked)."""
    seller = dispute.seller_id
    postings = [
        _posting(
            dispute,
            "dispute_reserve",
            [
                (seller_payable(seller), "debit", dispute.held - dispute.from_pending),
                (seller_pending(seller), "debit", dispute.from_pending),
                (dispute_reserve(seller), "credit", dispute.held),
            ],
        )
    ]
    if dispute.status == "WON":
        postings.append(
            _posting(
                dispute,
                "dispute_won",
                [
                    (dispute_reserve(seller), "debit", dispute.held),
                    (seller_payable(seller), "credit", dispute.amount - dispute.to_pending),
                    (seller_pending(seller), "credit", dispute.to_pending),
                    (PSP_RECEIVABLE, "credit", dispute.fee),
                ],
            )
        )
    elif dispute.status == "LOST":
        postings.append(
            _posting(
                dispute,
                "dispute_lost",
                [(dispute_reserve(seller), "debit", dispute.held), (PSP_RECEIVABLE, "credit", dispute.held)],
            )
        )
    return postings


def _stored(store: DisputeStore, dispute_id: str) -> Dispute:
    stored = store.get(dispute_id)
    if stored is None:
        # open_once stored it or found it stored: a read that misses it is a consistency fault; retry.
        raise RuntimeError(f"dispute {dispute_id} is not stored after opening")
    return stored


def apply_notice(notice: DisputeNotice, *, store: DisputeStore, ledger: Publisher) -> Dispute:
    """Apply one notice of the PSP's (any order, any number of times); returns the dispute as stored."""
    now = iso(utc_now())
    store.open_once(opened(notice, created_at=now))
    dispute = _stored(store, dispute_id_for(notice.psp_dispute_id))
    if not _same_money(dispute, notice):
        raise DisputeConflict(f"dispute {dispute.dispute_id}: the notice names other money than the record")
    target = STATUS_OF[notice.outcome]
    if target != "OPEN" and dispute.status != target:
        if dispute.status != "OPEN":
            raise DisputeConflict(f"dispute {dispute.dispute_id} is {dispute.status}; the PSP now says {target}")
        store.close_once(dispute.model_copy(update={"status": target, "closed_at": now}))
        dispute = _stored(store, dispute.dispute_id)
        if dispute.status != target:  # another notice closed it the other way in between
            raise DisputeConflict(f"dispute {dispute.dispute_id} is {dispute.status}; the PSP now says {target}")
    # Re-sent every time: a crash after the wallet's transaction must not leave the ledger behind.
    for posting in postings_for(dispute):
        ledger.publish(posting)
    return dispute


def get_dispute(dispute_id: str, *, store: DisputeReader) -> DisputeView:
    found = store.get(dispute_id)
    if found is None:
        raise NotFound("No dispute with this id.", param="dispute_id")
    return found.view()


def list_disputes(payment_order_id: str, *, store: DisputeReader) -> DisputeList:
    return DisputeList(disputes=[d.view() for d in store.by_payment_order(payment_order_id)])
