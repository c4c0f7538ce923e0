"""Refund API models, the stored refund, and what the refund service keeps per refunded charge."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from functions.common.ids import ExternalId
from functions.common.money import AmountMinor

RefundReason = Literal["requested_by_customer", "duplicate", "fraudulent", "orphan_charge"]
RefundStatus = Literal["PENDING", "SUCCEEDED", "FAILED"]
PspRefundStatus = Literal["pending", "succeeded", "failed"]
# The failure code of a refund the PSP failed without saying why.
REFUND_FAILED = "refund_failed"
# The refunds table's index of refunds by status and last change: reconciliation reads the SUCCEEDED ones,
# the recovery sweep the PENDING ones.
REFUNDS_BY_STATUS = "by_status_updated"


class RefundRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"payment_order_id": "po_1", "amount": 500, "reason": "requested_by_customer"}]
        },
    )

    payment_order_id: ExternalId = Field(description="The order to refund: it must have SUCCEEDED.")
    amount: AmountMinor | None = Field(
        default=None,
        description="Minor units to refund; absent: the rest of the order. All refunds of an order together "
        "never exceed its charge (else 422 refund_exceeds_charge).",
    )
    reason: RefundReason = Field(default="requested_by_customer")
    refund_application_fee: StrictBool = Field(
        default=True,
        description="Whether the marketplace gives back its commission in proportion to the refund (rounded "
        "down; when every refund of the order gives it back, the one that completes the charge takes the rest). "
        "false: the platform keeps its fee and the "
        "seller's wallet gives back the whole refund.",
    )


class Refund(BaseModel):
    """A refund as the refund service stores it (one item per refund)."""

    refund_id: str
    payment_order_id: str
    payment_id: str
    seller_id: str
    amount: int
    currency: str
    reason: RefundReason
    status: RefundStatus = "PENDING"
    failure_code: str | None = None
    # The part of `amount` that comes out of the platform's commission (the rest out of the seller's wallet),
    # fixed when the refund is stored; 0 when refund_application_fee is false, or the order took no fee.
    # Stored refunds always carry the flag; one stored before commissions existed reads as false, so failing
    # it takes nothing out of the charge's fee totals (its reservation never added to them).
    refund_application_fee: bool = False
    application_fee_refunded: int = 0
    charge_reference: str  # the PSP's charge being refunded
    psp_refund_id: str | None = None
    psp_status: PspRefundStatus | None = None  # what the PSP last said; None until it was asked
    # An orphan charge's refund: the seller was never credited, so no wallet or ledger movement follows.
    orphan: bool = False
    # Set by the move to SUCCEEDED: the wallet debit (and its journal) is due, and stays due if it later fails.
    debited: bool = False
    created_at: str
    updated_at: str
    # SHA-256 of the request body (functions.common.fingerprints); never part of the response.
    request_fingerprint: str | None = None


class ChargeRefunds(BaseModel):
    """Per refunded charge: what was charged and how much refunds hold of it (pending and succeeded ones).
    Every refund reserves its amount here with a conditional update; a failed refund releases it."""

    payment_order_id: str
    payment_id: str
    seller_id: str
    currency: str
    charged: int
    refunded: int = 0
    charge_reference: str
    orphan: bool = False
    application_fee: int = 0  # the order's commission
    # Of the pending and succeeded refunds that give back the fee: their amounts, and the fee they give back.
    fee_basis: int = 0
    fee_refunded: int = 0

    @property
    def refundable(self) -> int:
        return self.charged - self.refunded

    def fee_share(self, amount: int) -> int:
        """The commission a refund of `amount` gives back: the fee in proportion to all fee-giving refunds so
        far (rounded down), less what they gave back already. So the shares add up to the whole fee when the
        charge is refunded in full, whatever the pieces, and never to more; nor is one larger than its refund."""
        if self.application_fee == 0:
            return 0
        due = (self.fee_basis + amount) * self.application_fee // self.charged - self.fee_refunded
        return max(0, min(due, amount, self.application_fee - self.fee_refunded))


class RefundResponse(BaseModel):
    refund_id: str
    payment_order_id: str
    amount: int
    currency: str
    status: RefundStatus
    reason: RefundReason
    failure_code: str | None = None
    application_fee_refunded: int = Field(
        default=0,
        description="The part of the amount given back from the marketplace's commission; the rest comes "
        "out of the seller's wallet.",
    )
    created_at: str

    @classmethod
    def of(cls, refund: Refund) -> RefundResponse:
        return cls.model_validate(refund.model_dump(include=set(cls.model_fields)))
