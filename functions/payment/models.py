"""Payment API request/response models and the stored payment aggregate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from functions.common.events import Hold, OrderStatus
from functions.common.ids import ExternalId
from functions.common.money import AmountMinor, Currency, PartMinor, check_amounts

PaymentStatus = Literal["PROCESSING", "SUCCEEDED", "PARTIALLY_FAILED", "FAILED"]

MetadataKey = Annotated[str, Field(min_length=1, max_length=40)]
MetadataValue = Annotated[str, Field(max_length=500)]


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_order_id: ExternalId
    seller_id: ExternalId
    amount: AmountMinor
    payment_method: ExternalId | None = Field(default=None, description="Split tender: this order's token.")
    application_fee: PartMinor = Field(
        default=0,
        description="The marketplace's commission on this order, in minor units, at most its amount: the seller "
        "is credited amount - application_fee and the fee is booked to platform_revenue.",
    )
    hold: Hold = Field(
        default="none",
        description="`until_fulfilled`: the seller's share is credited to their pending balance until "
        "POST /v1/payment-orders/{payment_order_id}/fulfil or the end of the hold period, then to available. "
        "`none`: to available at once.",
    )

    @field_validator("application_fee")
    @classmethod
    def _fee_within_amount(cls, fee: int, info: ValidationInfo) -> int:
        amount = info.data.get("amount")  # absent when the amount itself was refused
        if amount is not None and fee > amount:
            raise ValueError(f"must be at most the order's amount, {amount}")
        return fee


class PaymentRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "checkout_id": "co_123",
                    "buyer_id": "buyer_1",
                    "currency": "USD",
                    "payment_method": "tok_visa",
                    "orders": [
                        {"payment_order_id": "po_1", "seller_id": "seller_a", "amount": 1099},
                        {
                            "payment_order_id": "po_2",
                            "seller_id": "seller_b",
                            "amount": 2500,
                            "application_fee": 250,
                        },
                    ],
                    "metadata": {"cart": "cart_42"},
                }
            ]
        },
    )

    checkout_id: ExternalId
    buyer_id: ExternalId
    currency: Currency
    payment_method: ExternalId = Field(description="PSP token, e.g. tok_visa. Never card data.")
    orders: list[OrderRequest] = Field(
        min_length=1,
        max_length=100,
        description="One order per seller. Each payment_order_id is unique within the request (else 400) and "
        "across payments (else 409 duplicate_payment_order).",
    )
    metadata: dict[MetadataKey, MetadataValue] | None = Field(
        default=None, max_length=50, description="Up to 50 keys of 1-40 characters; values up to 500 characters."
    )

    @field_validator("orders")
    @classmethod
    def _order_ids_unique(cls, orders: list[OrderRequest]) -> list[OrderRequest]:
        seen: set[str] = set()
        for index, order in enumerate(orders):
            if order.payment_order_id in seen:
                raise ValueError(f"orders[{index}].payment_order_id is repeated in this request")
            seen.add(order.payment_order_id)
        return orders

    @field_validator("orders")
    @classmethod
    def _amounts_within_the_currency_maximum(
        cls, orders: list[OrderRequest], info: ValidationInfo
    ) -> list[OrderRequest]:
        currency = info.data.get("currency")  # absent when the currency itself was refused
        if currency is not None:
            check_amounts(cls.__name__, currency, (((index, "amount"), o.amount) for index, o in enumerate(orders)))
        return orders


class OrderView(BaseModel):
    payment_order_id: str
    seller_id: str
    amount: int
    application_fee: int = 0
    hold: Hold = "none"
    payment_method: str
    status: OrderStatus = "NOT_STARTED"
    psp_reference: str | None = None
    failure_code: str | None = None
    wallet_updated: bool = False
    ledger_updated: bool = False

    @property
    def done(self) -> bool:
        return self.status == "FAILED" or (self.status == "SUCCEEDED" and self.wallet_updated and self.ledger_updated)


class Payment(BaseModel):
    payment_id: str
    checkout_id: str
    buyer_id: str
    currency: str
    amount: int
    status: PaymentStatus = "PROCESSING"
    created_at: str
    updated_at: str
    metadata: dict[str, str] | None = None
    orders: list[OrderView]
    version: int = 0
    # SHA-256 of the request body that created the payment (functions.common.fingerprints): a later
    # request under the same caller and key must carry the same body. Never part of the response.
    request_fingerprint: str | None = None


class OrderResponse(BaseModel):
    payment_order_id: str
    seller_id: str
    amount: int
    application_fee: int = Field(default=0, description="The marketplace's commission on the order (minor units).")
    hold: Hold = Field(default="none", description="Whether the seller's share waits for fulfilment.")
    status: OrderStatus
    psp_reference: str | None = None
    failure_code: str | None = None
    wallet_updated: bool
    ledger_updated: bool
    amount_refunded: int = Field(
        default=0, description="What refunds hold of the order's charge: pending and succeeded ones (minor units)."
    )


class PaymentResponse(BaseModel):
    payment_id: str
    checkout_id: str
    buyer_id: str
    status: PaymentStatus
    currency: str
    amount: int
    created_at: str
    metadata: dict[str, str] | None = None
    orders: list[OrderResponse]

    @classmethod
    def of(cls, payment: Payment, refunded: Mapping[str, int] | None = None) -> PaymentResponse:
        """`refunded`: each order's amount_refunded, as the refund service holds it (absent: none)."""
        amounts = refunded or {}
        orders = [
            o.model_dump(exclude={"payment_method"}) | {"amount_refunded": amounts.get(o.payment_order_id, 0)}
            for o in payment.orders
        ]
        return cls.model_validate(payment.model_dump() | {"orders": orders})
