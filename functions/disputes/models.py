"""Disputes (chargebacks): the record each one keeps, what the API shows of it, and the message the PSP
webhook receiver hands the disputes worker."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.common.events import Message
from functions.common.money import LARGEST_AMOUNT_MINOR, AmountMinor, Currency
from functions.common.tenants import ScopedId

DisputeStatus = Literal["OPEN", "WON", "LOST"]
# What the PSP says of a dispute: still open (any of its open states), or closed with an outcome.
Outcome = Literal["open", "won", "lost"]
STATUS_OF: dict[Outcome, DisputeStatus] = {"open": "OPEN", "won": "WON", "lost": "LOST"}


class DisputeNotice(Message):
    """psp-webhooks -> disputes worker: the PSP opened or closed a dispute on one of our orders."""

    psp_dispute_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    payment_order_id: ScopedId
    seller_id: ScopedId
    amount: AmountMinor
    fee: int = Field(strict=True, ge=0, le=LARGEST_AMOUNT_MINOR)
    currency: Currency
    reason: str = Field(min_length=1, max_length=100)
    outcome: Outcome


class DisputeView(BaseModel):
    """A dispute as the API shows it."""

    model_config = ConfigDict(frozen=True)

    dispute_id: str
    payment_order_id: str
    psp_dispute_id: str
    amount: int = Field(description="The disputed amount, in minor units.")
    fee: int = Field(description="The PSP's dispute fee, in minor units; the seller bears it, won or lost.")
    currency: str
    status: DisputeStatus
    reason: str


class Dispute(DisputeView):
    """The stored record: the view, plus whose wallet holds the money and when the state changed."""

    seller_id: str
    created_at: str
    closed_at: str | None = None
    # A held order's dispute is taken from its hold first: `from_pending` of `held` came from the seller's
    # pending share; a won dispute gives `to_pending` of the amount back to the hold if it still holds.
    from_pending: int = 0
    to_pending: int = 0

    @property
    def held(self) -> int:
        """What the dispute holds in the seller's reserved balance while it is open."""
        return self.amount + self.fee

    def view(self) -> DisputeView:
        return DisputeView.model_validate(self.model_dump(include=set(DisputeView.model_fields)))


class DisputeList(BaseModel):
    disputes: list[DisputeView]
