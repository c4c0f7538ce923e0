"""Seller wallets: credit each charged order exactly once, then hand it to the ledger."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from functions.common.clock import Clock, utc_now
from functions.common.events import OrderCharged
from functions.wallet import keys
from functions.wallet.holds import HeldShare, held_share


class Balance(BaseModel):
    available: int = 0
    reserved: int = 0
    pending: int = Field(default=0, description="Held orders' shares waiting for fulfilment; not payable yet.")


class WalletView(BaseModel):
    seller_id: str
    balances: dict[str, Balance]


class WalletStore(Protocol):
    def credit_once(
        self, *, seller_id: str, currency: str, amount: int, applied_marker: str, held: HeldShare | None = None
    ) -> bool:
        """Credit and record the marker atomically; False if the marker existed (already credited). `held`:
        credit `pending` instead of `available`, and store the hold with the marker."""

    def balances(self, seller_id: str) -> dict[str, Balance]: ...


class Publisher(Protocol):
    def publish(self, message: BaseModel) -> None: ...


def credit_order(
    charge: OrderCharged, *, store: WalletStore, ledger: Publisher, hold_days: int, now: Clock = utc_now
) -> bool:
    """Returns True when this call credited the wallet, False for a redelivery (no money moved). A held
    order's share goes to `pending` until its release (functions/wallet/holds.py), `hold_days` at most.

    The payment learns of the credit from the ledger's progress event (the ledger only ever books an
    order the wallet has credited), which saves one message and one payment write per order."""
    credited = store.credit_once(
        seller_id=charge.seller_id,
        currency=charge.currency,
        amount=charge.seller_amount,  # the commission is the platform's, never the seller's
        applied_marker=keys.charge_marker(charge.payment_order_id),
        held=held_share(charge, credited_at=now(), hold_days=hold_days),
    )
    # The hand-off is re-sent on redelivery too: a crash after the credit must not strand the order.
    ledger.publish(charge)
    return credited


def wallet_view(seller_id: str, *, store: WalletStore) -> WalletView:
    return WalletView(seller_id=seller_id, balances=store.balances(seller_id))
