"""Seller wallets: credit each charged order exactly once, then hand it to the ledger."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from functions.common.events import OrderCharged


class Balance(BaseModel):
    available: int = 0
    reserved: int = 0


class WalletView(BaseModel):
    seller_id: str
    balances: dict[str, Balance]


class WalletStore(Protocol):
    def credit_once(self, *, seller_id: str, currency: str, amount: int, applied_marker: str) -> bool:
        """Credit and record the marker atomically; False if the marker existed (already credited)."""

    def balances(self, seller_id: str) -> dict[str, Balance]: ...


class Publisher(Protocol):
    def publish(self, message: BaseModel) -> None: ...


def credit_order(charge: OrderCharged, *, store: WalletStore, ledger: Publisher) -> bool:
    """Returns True when this call credited the wallet, False for a redelivery (no money moved).

    The payment learns of the credit from the ledger's progress event (the ledger only ever books an
    order the wallet has credited), which saves one message and one payment write per order."""
    credited = store.credit_once(
        seller_id=charge.seller_id,
        currency=charge.currency,
        amount=charge.seller_amount,  # the commission is the platform's, never the seller's
        applied_marker=f"charge#{charge.payment_order_id}",
    )
    # The hand-off is re-sent on redelivery too: a crash after the credit must not strand the order.
    ledger.publish(charge)
    return credited


def wallet_view(seller_id: str, *, store: WalletStore) -> WalletView:
    return WalletView(seller_id=seller_id, balances=store.balances(seller_id))
