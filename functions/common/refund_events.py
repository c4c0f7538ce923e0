"""Messages of the refund flow. Each queue carries exactly one of these models as its body."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from functions.common.events import Message
from functions.common.ids import ExternalId
from functions.common.money import AmountMinor, Currency, PartMinor

# Refund ids are derived ids (functions.refund.domain): "rf_" and 32 hex digits.
REFUND_ID_PATTERN = r"^rf_[0-9a-f]{32}$"


class ExecuteRefund(Message):
    """refund dispatcher -> refund executor: ask the PSP for this stored refund, once."""

    refund_id: str
    payment_order_id: ExternalId


class RefundMoney(Message):
    """refund executor / PSP webhooks -> wallet refunds queue -> ledger postings: move a refund's money.

    `debit`: the refund succeeded; the seller's available balance gives the amount back (it may go negative).
    `restore`: a refund that had succeeded failed after all; the debit is undone. Each is applied once per
    refund (its own applied marker), in whichever order they arrive, so the two always net to zero.
    `application_fee_refunded` of the amount is given back from the platform's commission, not the wallet."""

    refund_id: str
    payment_order_id: ExternalId
    payment_id: str
    seller_id: ExternalId
    amount: AmountMinor
    application_fee_refunded: PartMinor = 0
    currency: Currency
    movement: Literal["debit", "restore"]

    @model_validator(mode="after")
    def _fee_within_amount(self) -> RefundMoney:
        if self.application_fee_refunded > self.amount:
            raise ValueError("application_fee_refunded is more than the refund's amount")
        return self

    @property
    def seller_amount(self) -> int:
        """What the seller's wallet gives back (or gets back, on a restore)."""
        return self.amount - self.application_fee_refunded
