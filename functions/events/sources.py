"""From an owning service's state change to the event it means: one small mapping per source table.

A mapping takes the item as its table's stream shows it after the change (NEW_IMAGE, plain Python values)
and the change's time, and returns the event, or None when the change is not an outcome. The event id is
derived from the type and the business id only, so every stream record of one outcome - a replay, a later
write that leaves the outcome as it was - names the same event, and the recorder's conditional write keeps
one. Adding a source (refunds, disputes) is one mapping here and one entry in SOURCES."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from functions.common.ids import deterministic_id
from functions.common.tenants import client_text, tenant_of_id
from functions.events.models import (
    DisputeEventData,
    Event,
    PaymentEventData,
    PayoutEventData,
    RefundEventData,
)


@dataclass(frozen=True)
class SourcedEvent:
    tenant_id: str
    event: Event


EventMapping = Callable[[Mapping[str, Any], int], SourcedEvent | None]

PAYMENT_OUTCOMES = {
    "SUCCEEDED": "payment.succeeded",
    "PARTIALLY_FAILED": "payment.partially_failed",
    "FAILED": "payment.failed",
}
PAYOUT_OUTCOMES = {"PAID": "payout.paid", "FAILED": "payout.failed"}
REFUND_OUTCOMES = {"SUCCEEDED": "refund.succeeded", "FAILED": "refund.failed"}
# A dispute is one item whose status moves OPEN -> WON | LOST: opening it is one event, closing it another.
DISPUTE_OUTCOMES = {"OPEN": "dispute.created", "WON": "dispute.closed", "LOST": "dispute.closed"}
# The payments table's payment items (the table also holds one uniqueness guard per order id).
PAYMENT_ITEM_SK = "PAYMENT"


def event_id(event_type: str, object_id: str) -> str:
    """One outcome, one id: the type and the id of the object it is about."""
    return deterministic_id("evt", event_type, object_id)


def outcome_event(
    image: Mapping[str, Any], created: int, *, event_type: str, object_id: str, data: BaseModel
) -> SourcedEvent:
    # The object's id says whose it is (functions/common/tenants.py); its data goes out in that tenant's ids.
    tenant = tenant_of_id(object_id)
    return SourcedEvent(
        tenant_id=tenant,
        event=Event(
            id=event_id(event_type, object_id),
            type=event_type,  # validated: every mapping passes a member of EventType
            created=created,
            data=json.loads(client_text(tenant, data.model_dump_json())),
        ),
    )


def payment_event(image: Mapping[str, Any], created: int) -> SourcedEvent | None:
    event_type = PAYMENT_OUTCOMES.get(str(image.get("status")))
    if image.get("sk") != PAYMENT_ITEM_SK or event_type is None:
        return None
    data = PaymentEventData.model_validate(dict(image))
    return outcome_event(image, created, event_type=event_type, object_id=data.payment_id, data=data)


def payout_event(image: Mapping[str, Any], created: int) -> SourcedEvent | None:
    event_type = PAYOUT_OUTCOMES.get(str(image.get("status")))
    if event_type is None:
        return None
    data = PayoutEventData.model_validate(dict(image))
    return outcome_event(image, created, event_type=event_type, object_id=data.payout_id, data=data)


def refund_event(image: Mapping[str, Any], created: int) -> SourcedEvent | None:
    """A refund item (refund_id, payment_order_id, amount, currency, status, failure_code) at its outcome."""
    event_type = REFUND_OUTCOMES.get(str(image.get("status")).upper())
    if event_type is None:
        return None
    data = RefundEventData.model_validate(dict(image))
    return outcome_event(image, created, event_type=event_type, object_id=data.refund_id, data=data)


def dispute_event(image: Mapping[str, Any], created: int) -> SourcedEvent | None:
    """A dispute item (dispute_id, payment_order_id, amount, fee, currency, status, reason): opened, closed."""
    event_type = DISPUTE_OUTCOMES.get(str(image.get("status")).upper())
    if event_type is None:
        return None
    data = DisputeEventData.model_validate(dict(image))
    return outcome_event(image, created, event_type=event_type, object_id=data.dispute_id, data=data)


# source name (as the recorder's EVENT_SOURCE_TABLES names it) -> its mapping.
SOURCES: dict[str, EventMapping] = {
    "payments": payment_event,
    "payouts": payout_event,
    "refunds": refund_event,
    "disputes": dispute_event,
}
# source name -> the `status` values its mapping turns into events: the stream filter of the recorder's
# mapping on that table (infra/constructs/events.py), so other writes do not invoke it. Each table writes
# these exactly (upper case): the filter is case-sensitive.
SOURCE_STATUSES: dict[str, list[str]] = {
    "payments": list(PAYMENT_OUTCOMES),
    "payouts": list(PAYOUT_OUTCOMES),
    "refunds": list(REFUND_OUTCOMES),
    "disputes": list(DISPUTE_OUTCOMES),
}
