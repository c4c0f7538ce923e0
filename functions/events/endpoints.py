"""Webhook endpoints: register (idempotent, the secret generated and shown to its creator only), list,
remove. Pure logic on ports: the store keeps the secret encrypted, the sealer encrypts and decrypts it."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from functions.common.clock import Clock, iso, utc_now
from functions.common.errors import IdempotencyKeyReused, InvalidRequest, NotFound
from functions.common.fingerprints import fingerprint
from functions.common.ids import deterministic_id
from functions.events.models import EVENT_TYPES, EventType
from functions.events.signing import new_secret

MAX_URL_LENGTH = 2048
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
IDEMPOTENCY_PARAM = "Idempotency-Key"


class EndpointRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"url": "https://marketplace.example/hooks/payments", "events": ["payment.succeeded"]}]
        },
    )

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where events are POSTed: https with a host name (locally, http://127.0.0.1 or "
        "http://localhost as well, when the stack allows loopback endpoints).",
    )
    events: list[EventType] = Field(
        min_length=1,
        max_length=len(EVENT_TYPES),
        description="Types to receive, each once.",
        json_schema_extra={"uniqueItems": True},
    )

    @field_validator("events")
    @classmethod
    def _unique(cls, events: list[str]) -> list[str]:
        if len(set(events)) != len(events):
            raise ValueError("an event type is listed twice")
        return events


class Endpoint(BaseModel):
    """The stored endpoint; the secret only as the sealer's ciphertext."""

    tenant_id: str
    endpoint_id: str
    url: str
    events: list[str]
    created_at: str
    secret_ciphertext: bytes
    request_fingerprint: str


class EndpointView(BaseModel):
    endpoint_id: str
    url: str
    events: list[str]
    created_at: str

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointView:
        return cls.model_validate(endpoint.model_dump(include=set(cls.model_fields)))


class CreatedEndpoint(EndpointView):
    secret: str = Field(description="Shown to this request (and its retries with the same Idempotency-Key) only.")


class EndpointList(BaseModel):
    data: list[EndpointView]


class EndpointStore(Protocol):
    def insert(self, endpoint: Endpoint) -> bool:
        """Store a new endpoint; False if its id is taken."""

    def get(self, tenant_id: str, endpoint_id: str) -> Endpoint | None: ...

    def list(self, tenant_id: str) -> list[Endpoint]: ...

    def delete(self, tenant_id: str, endpoint_id: str) -> bool:
        """Remove it; False if there was none."""


class SecretSealer(Protocol):
    def seal(self, secret: str, *, tenant_id: str, endpoint_id: str) -> bytes: ...

    def open(self, ciphertext: bytes, *, tenant_id: str, endpoint_id: str) -> str: ...


def check_url(url: str, *, allow_loopback_http: bool) -> None:
    """https to a named host (no user info, no IP literal: a webhook must not reach our own network);
    http only to loopback, and only where the stack allows it (the local stack)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise InvalidRequest("url is not a valid URL.", param="url", code="parameter_invalid") from None
    loopback = host in LOOPBACK_HOSTS
    if parts.scheme == "http" and loopback and allow_loopback_http:
        return
    if parts.scheme != "https":
        raise InvalidRequest("url must use https.", param="url", code="parameter_invalid")
    if not host or parts.username is not None or parts.password is not None or loopback or _is_ip(host):
        raise InvalidRequest("url must name a public host, without credentials.", param="url", code="parameter_invalid")
    if "." not in host or any(not label or len(label) > 63 for label in host.split(".")):
        raise InvalidRequest("url must name a public host, without credentials.", param="url", code="parameter_invalid")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def endpoint_id_for(tenant_id: str, caller: str, idempotency_key: str) -> str:
    # From the caller and its Idempotency-Key: a retry after a lost response lands on the same endpoint.
    return deterministic_id("we", tenant_id, caller, idempotency_key)


def register(
    request: EndpointRequest,
    *,
    tenant_id: str,
    caller: str,
    idempotency_key: str,
    allow_loopback_http: bool,
    store: EndpointStore,
    sealer: SecretSealer,
    now: Clock = utc_now,
    make_secret: Callable[[], str] = new_secret,
) -> tuple[CreatedEndpoint, bool]:
    """The endpoint with its secret, and whether this request created it (False: a retry's replay)."""
    check_url(request.url, allow_loopback_http=allow_loopback_http)
    endpoint_id = endpoint_id_for(tenant_id, caller, idempotency_key)
    request_print = fingerprint(request.model_dump(mode="json"))
    existing = store.get(tenant_id, endpoint_id)
    if existing is None:
        secret = make_secret()
        endpoint = Endpoint(
            tenant_id=tenant_id,
            endpoint_id=endpoint_id,
            url=request.url,
            events=list(request.events),
            created_at=iso(now()),
            secret_ciphertext=sealer.seal(secret, tenant_id=tenant_id, endpoint_id=endpoint_id),
            request_fingerprint=request_print,
        )
        if store.insert(endpoint):
            return CreatedEndpoint(**EndpointView.of(endpoint).model_dump(), secret=secret), True
        existing = store.get(tenant_id, endpoint_id)
        if existing is None:  # pragma: no cover - insert said it exists
            raise RuntimeError("endpoint vanished between insert and read")
    if existing.request_fingerprint != request_print:
        raise IdempotencyKeyReused(IDEMPOTENCY_PARAM)
    secret = sealer.open(existing.secret_ciphertext, tenant_id=tenant_id, endpoint_id=endpoint_id)
    return CreatedEndpoint(**EndpointView.of(existing).model_dump(), secret=secret), False


def list_endpoints(*, tenant_id: str, store: EndpointStore) -> EndpointList:
    return EndpointList(data=[EndpointView.of(e) for e in store.list(tenant_id)])


def remove(endpoint_id: str, *, tenant_id: str, store: EndpointStore) -> None:
    if not store.delete(tenant_id, endpoint_id):
        raise NotFound(f"No webhook endpoint {endpoint_id}.", param="endpoint_id")
