"""Fulfilment: the marketplace confirms it delivered a held order, so the seller's share may be released
from `pending` to `available` (the wallet's holds worker does it once: functions/wallet/holds.py)."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from functions.common.errors import Conflict, NotFound
from functions.common.events import Hold, ReleaseHold
from functions.executor.domain import OrderExecution


class ChargedOrders(Protocol):
    def order(self, payment_order_id: str) -> OrderExecution | None:
        """The executor's record of the order; None until the executor first claims it."""

    def accepted(self, payment_order_id: str) -> bool:
        """Whether a payment owns this order id."""


class Publisher(Protocol):
    def publish(self, message: BaseModel) -> None: ...


class FulfilmentResponse(BaseModel):
    payment_order_id: str
    payment_id: str
    seller_id: str
    amount: int
    application_fee: int
    currency: str
    hold: Hold
    release: str = Field(
        default="requested",
        description="The seller's share moves from pending to available shortly (once, however often this is "
        "called); read the seller's wallet to see it.",
    )


def fulfil_order(payment_order_id: str, *, orders: ChargedOrders, holds_queue: Publisher) -> FulfilmentResponse:
    """Ask for the release of a charged, held order's share. Safe to repeat: the release happens once, and
    one after the hold period already ended (or after an earlier call) is a no-op."""
    order = orders.order(payment_order_id)
    if order is None:
        if orders.accepted(payment_order_id):
            raise Conflict(
                "This order is not charged yet: only a charged order's funds can be released.",
                param="payment_order_id",
                code="order_not_charged",
            )
        raise NotFound(f"No payment order {payment_order_id}.", param="payment_order_id")
    if order.hold != "until_fulfilled":
        raise Conflict(
            "This order was not held: its seller's share was available at once.",
            param="payment_order_id",
            code="order_not_held",
        )
    if order.status != "SUCCEEDED":
        raise Conflict(
            f"This order is {order.status}, not charged: only a charged order's funds can be released.",
            param="payment_order_id",
            code="order_not_charged",
        )
    holds_queue.publish(ReleaseHold(payment_order_id=payment_order_id, seller_id=order.seller_id, reason="fulfilled"))
    return FulfilmentResponse(
        payment_order_id=payment_order_id,
        payment_id=order.payment_id,
        seller_id=order.seller_id,
        amount=order.amount,
        application_fee=order.application_fee,
        currency=order.currency,
        hold=order.hold,
    )
