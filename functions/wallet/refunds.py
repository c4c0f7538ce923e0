"""Refunds in the wallet: a succeeded refund's debit and, if the PSP fails it afterwards, its restore; each
applied once (its own applied marker, in the debit's transaction), then handed to the ledger as a journal.

Like a charge's credit: the wallet moves first and hands the journal on, and a redelivered message re-sends
the journal (the ledger books each journal id once), so wallet == ledger holds once the journal lands."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from functions.common.events import JournalPosting, PostingLine
from functions.common.refund_events import RefundMoney
from functions.ledger.accounts import PLATFORM_REVENUE, PSP_RECEIVABLE, seller_payable, seller_pending

# The ledger postings producer name of the wallet (functions/ledger/policy.py).
PRODUCER = "wallet"
REFUND_JOURNAL = "refund"
REFUND_REVERSAL_JOURNAL = "refund_reversal"


class Movement(Protocol):
    @property
    def applied_now(self) -> bool: ...

    @property
    def pending(self) -> int: ...


class RefundWallet(Protocol):
    def refund_debit_once(
        self, *, seller_id: str, currency: str, payment_order_id: str, amount: int, applied_marker: str
    ) -> Movement:
        """Debit the seller's part, from the order's hold first; a redelivery reports the first split."""

    def refund_restore_once(
        self,
        *,
        seller_id: str,
        currency: str,
        payment_order_id: str,
        amount: int,
        applied_marker: str,
        debit_marker: str,
    ) -> Movement:
        """Give the debit back, to the order's hold what it took from it while the hold lasts."""


class Publisher(Protocol):
    def publish(self, message: BaseModel) -> None: ...


def refund_marker(refund_id: str) -> str:
    return f"refund#{refund_id}"


def restore_marker(refund_id: str) -> str:
    return f"refund_restore#{refund_id}"


def refund_posting(message: RefundMoney, *, pending: int = 0) -> JournalPosting:
    """The refund journal: we owe the seller less (seller_payable debit; seller_pending for the `pending` part
    taken from a held order's share) and the platform gives back its share of the commission (platform_revenue
    debit), since the PSP holds less of ours (psp_receivable credit): it paid the buyer back. A zero line is
    left out. A restore books the exact reverse."""
    taken = [
        (account, amount)
        for account, amount in (
            (seller_payable(message.seller_id), message.seller_amount - pending),
            (seller_pending(message.seller_id), pending),
            (PLATFORM_REVENUE, message.application_fee_refunded),
        )
        if amount
    ]
    if message.movement == "debit":
        kind = REFUND_JOURNAL
        lines = [PostingLine(account=account, direction="debit", amount=amount) for account, amount in taken]
        lines.append(PostingLine(account=PSP_RECEIVABLE, direction="credit", amount=message.amount))
    else:
        kind = REFUND_REVERSAL_JOURNAL
        lines = [PostingLine(account=PSP_RECEIVABLE, direction="debit", amount=message.amount)]
        lines += [PostingLine(account=account, direction="credit", amount=amount) for account, amount in taken]
    return JournalPosting(
        producer=PRODUCER,
        kind=kind,
        business_id=message.refund_id,
        currency=message.currency,
        lines=lines,
        payment_order_id=message.payment_order_id,
        reference=message.refund_id,
    )


def apply_refund_money(message: RefundMoney, *, store: RefundWallet, ledger: Publisher) -> bool:
    """True when this call moved the wallet, False for a redelivery (no money moved)."""
    if message.movement == "debit":
        moved = store.refund_debit_once(
            seller_id=message.seller_id,
            currency=message.currency,
            payment_order_id=message.payment_order_id,
            amount=message.seller_amount,
            applied_marker=refund_marker(message.refund_id),
        )
    else:
        moved = store.refund_restore_once(
            seller_id=message.seller_id,
            currency=message.currency,
            payment_order_id=message.payment_order_id,
            amount=message.seller_amount,
            applied_marker=restore_marker(message.refund_id),
            debit_marker=refund_marker(message.refund_id),
        )
    # Re-sent on redelivery too (with the split the wallet stored): a crash after the wallet moved must not
    # strand the journal.
    ledger.publish(refund_posting(message, pending=moved.pending))
    return moved.applied_now
