"""The marketplace's events: their types, the event every endpoint receives, the `data` of each source, and
what travels between the event functions (docs/api.md, "Events for the marketplace")."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal[
    "payment.succeeded",
    "payment.partially_failed",
    "payment.failed",
    "refund.succeeded",
    "refund.failed",
    "dispute.created",
    "dispute.closed",
    "payout.paid",
    "payout.failed",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
# The `source` of our events on the EventBridge bus (rules of other teams match on it).
BUS_SOURCE = "payments.marketplace-events"


class Event(BaseModel):
    """What an endpoint receives (the signed body) and what GET /v1/events lists."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Stable across redeliveries: receivers deduplicate by it.")
    type: EventType
    created: int = Field(description="Unix time (seconds) of the state change the event reports.")
    data: dict[str, Any] = Field(description="The object the event is about; its shape depends on the type.")


class TenantEvent(BaseModel):
    """An event with the tenant it belongs to: the bus's event detail and the fan-out's input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str
    event: Event


class DeliveryMessage(BaseModel):
    """One message per (event, endpoint) on the delivery queue: a dead endpoint only delays its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str
    endpoint_id: str
    event: Event


# The `data` of each event type. Payment and payout data are what their GET routes answer, minus fields
# that keep changing after the outcome (progress flags, updated_at).


class PaymentOrderData(BaseModel):
    payment_order_id: str
    seller_id: str
    amount: int
    status: str
    psp_reference: str | None = None
    failure_code: str | None = None


class PaymentEventData(BaseModel):
    """payment.succeeded / payment.partially_failed / payment.failed"""

    payment_id: str
    checkout_id: str
    buyer_id: str
    status: str
    currency: str
    amount: int
    created_at: str
    metadata: dict[str, str] | None = None
    orders: list[PaymentOrderData]


class PayoutEventData(BaseModel):
    """payout.paid / payout.failed"""

    payout_id: str
    seller_id: str
    amount: int
    currency: str
    status: str
    psp_reference: str | None = None
    failure_code: str | None = None
    created_at: str


class RefundEventData(BaseModel):
    """refund.succeeded / refund.failed"""

    refund_id: str
    payment_order_id: str
    amount: int
    currency: str
    status: str
    failure_code: str | None = None


class DisputeEventData(BaseModel):
    """dispute.created / dispute.closed (`status` is open, won or lost; `fee` is the PSP's dispute fee)"""

    dispute_id: str
    payment_order_id: str
    amount: int
    fee: int
    currency: str
    status: str
    reason: str | None = None


class EventList(BaseModel):
    data: list[Event] = Field(description="Oldest first.")
    has_more: bool = Field(description="More events follow the last one: ask again with starting_after=<its id>.")
