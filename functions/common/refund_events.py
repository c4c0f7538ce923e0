"""Messages of the refund flow. Each queue carries exactly one of these models as its body."""

from __future__ import annotations

from typing import Literal

from functions.common.events import Message, SellerShare
from functions.common.money import Currency, PartMinor
from functions.common.tenants import ScopedId

# Refund ids are derived ids (functions.refund.domain): "rf_" and 32 hex digits.
REFUND_ID_PATTERN = r"^rf_[0-9a-f]{32}$"


class ExecuteRefund(Message):
    """refund dispatcher -> refund executor: ask the PSP for this stored refund, once."""

    refund_id: str
    payment_order_id: ScopedId


class RefundMoney(SellerShare):
    """refund executor / PSP webhooks -> wallet refunds queue -> ledger postings: move a refund's money.

    `debit`: the refund succeeded; the seller's wallet gives the amount back (it may go negative).
    `restore`: a refund that had succeeded failed after all; the debit is undone. Each is applied once per
    refund (its own applied marker), so the two always net to zero: in either order for an order credited
    without a hold; for a held order, a restore that arrives first waits for its debit (the debit decides
    how much came from the hold). `application_fee_refunded` of the amount is given back from the platform's
    commission, not the wallet."""

    _platform_field = "application_fee_refunded"
    refund_id: str
    payment_order_id: ScopedId
    payment_id: str
    seller_id: ScopedId
    application_fee_refunded: PartMinor = 0
    currency: Currency
    movement: Literal["debit", "restore"]
