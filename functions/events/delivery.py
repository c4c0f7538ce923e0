"""Getting events to the marketplace's endpoints: fan an event out to one delivery per subscribed endpoint,
then deliver each on its own - a signed POST whose non-2xx answer or failure to answer is retried with
backoff by the queue (functions/common/backoff.py), so a dead endpoint delays only its own deliveries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from functions.common.backoff import TransientError
from functions.events.endpoints import Endpoint, SecretSealer
from functions.events.models import DeliveryMessage, TenantEvent
from functions.events.signing import SIGNATURE_HEADER, signature_header

USER_AGENT = "payments-webhooks/1"
DeliveryOutcome = Literal["delivered", "endpoint_gone", "not_subscribed"]


class EndpointUnreachable(TransientError):
    """No answer within the timeout, or no connection: retried with backoff."""


class EndpointRefused(TransientError):
    """The endpoint answered, but not 2xx: retried with backoff."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the endpoint answered {status}")
        self.status = status


class Endpoints(Protocol):
    def get(self, tenant_id: str, endpoint_id: str) -> Endpoint | None: ...

    def list(self, tenant_id: str) -> list[Endpoint]: ...


class DeliveryQueue(Protocol):
    def publish_many(self, messages: Sequence[DeliveryMessage]) -> None: ...


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST once (no redirects, the delivery timeout); the status, or EndpointUnreachable."""


def fan_out(tenant_event: TenantEvent, *, endpoints: Endpoints, queue: DeliveryQueue) -> int:
    """One delivery message per endpoint of the tenant subscribed to the event's type."""
    event = tenant_event.event
    messages = [
        DeliveryMessage(tenant_id=tenant_event.tenant_id, endpoint_id=e.endpoint_id, event=event)
        for e in endpoints.list(tenant_event.tenant_id)
        if event.type in e.events
    ]
    queue.publish_many(messages)
    return len(messages)


def deliver(
    message: DeliveryMessage, *, endpoints: Endpoints, sealer: SecretSealer, transport: Transport, now: int
) -> DeliveryOutcome:
    """One attempt. An endpoint removed since the fan-out gets nothing more; any other failure raises."""
    endpoint = endpoints.get(message.tenant_id, message.endpoint_id)
    if endpoint is None:
        return "endpoint_gone"
    if message.event.type not in endpoint.events:
        return "not_subscribed"
    secret = sealer.open(endpoint.secret_ciphertext, tenant_id=endpoint.tenant_id, endpoint_id=endpoint.endpoint_id)
    # The same bytes on every attempt (the message's event); the signature is made for this attempt's time.
    body = message.event.model_dump_json().encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(secret, now, body),
    }
    status = transport.post(endpoint.url, body, headers)
    if not 200 <= status < 300:
        raise EndpointRefused(status)
    return "delivered"
