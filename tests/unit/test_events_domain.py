"""Events for the marketplace, the pure parts: source mappings and stable ids, recording once, signatures,
endpoint registration and URL rules, fan-out and delivery, the event list's cursor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.common.errors import IdempotencyKeyReused, InvalidRequest, NotFound
from functions.events import catalog, delivery, endpoints, recorder, signing
from functions.events.endpoints import Endpoint, EndpointRequest
from functions.events.models import DeliveryMessage, Event, TenantEvent
from functions.events.settings import EventRecorderSettings, default_delivery_retry_policy
from functions.events.sources import (
    SOURCES,
    SourcedEvent,
    dispute_event,
    event_id,
    payment_event,
    payout_event,
    refund_event,
)

CREATED = 1_767_600_000


def payment_item(status: str, **changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": "PAYMENT#pay_1",
        "sk": "PAYMENT",
        "entity": "payment",
        "payment_id": "pay_1",
        "checkout_id": "co_1",
        "buyer_id": "buyer_1",
        "currency": "USD",
        "amount": 3599,
        "status": status,
        "created_at": "2026-01-05T10:00:00.000000+00:00",
        "updated_at": "2026-01-05T10:00:03.000000+00:00",
        "version": 6,
        "request_fingerprint": "abc",
        "orders": [
            {
                "payment_order_id": "po_1",
                "seller_id": "seller_a",
                "amount": 1099,
                "payment_method": "tok_visa",
                "status": "SUCCEEDED",
                "psp_reference": "ch_1",
                "wallet_updated": True,
                "ledger_updated": True,
            },
            {
                "payment_order_id": "po_2",
                "seller_id": "seller_b",
                "amount": 2500,
                "payment_method": "tok_chargeDeclined",
                "status": "FAILED",
                "failure_code": "card_declined",
            },
        ],
    }
    return item | changes


def payout_item(status: str, **changes: Any) -> dict[str, Any]:
    item = {
        "payout_id": "po_pay_1",
        "seller_id": "seller_a",
        "amount": 3000,
        "currency": "USD",
        "status": status,
        "trigger": "api",
        "created_at": "2026-01-05T11:00:00.000000+00:00",
        "updated_at": "2026-01-05T11:00:02.000000+00:00",
    }
    return item | changes


# -- sources


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        ("SUCCEEDED", "payment.succeeded"),
        ("PARTIALLY_FAILED", "payment.partially_failed"),
        ("FAILED", "payment.failed"),
    ],
)
def test_a_payment_outcome_becomes_its_event_with_an_id_from_the_outcome(status: str, event_type: str) -> None:
    sourced = payment_event(payment_item(status), CREATED)
    assert sourced is not None
    assert sourced.tenant_id == "default"
    assert sourced.event.type == event_type
    assert sourced.event.id == event_id(event_type, "pay_1")
    assert sourced.event.created == CREATED
    # the payment as GET answers it, without what keeps changing or is internal
    assert sourced.event.data == {
        "payment_id": "pay_1",
        "checkout_id": "co_1",
        "buyer_id": "buyer_1",
        "status": status,
        "currency": "USD",
        "amount": 3599,
        "created_at": "2026-01-05T10:00:00.000000+00:00",
        "metadata": None,
        "orders": [
            {
                "payment_order_id": "po_1",
                "seller_id": "seller_a",
                "amount": 1099,
                "status": "SUCCEEDED",
                "psp_reference": "ch_1",
                "failure_code": None,
            },
            {
                "payment_order_id": "po_2",
                "seller_id": "seller_b",
                "amount": 2500,
                "status": "FAILED",
                "psp_reference": None,
                "failure_code": "card_declined",
            },
        ],
    }


def test_the_same_outcome_written_again_names_the_same_event() -> None:
    first = payment_event(payment_item("SUCCEEDED"), CREATED)
    later = payment_event(payment_item("SUCCEEDED", version=7, updated_at="2026-01-05T10:09:00Z"), CREATED + 60)
    assert first is not None and later is not None
    assert later.event.id == first.event.id and later.event.data == first.event.data


def test_processing_payments_and_order_guards_are_not_events() -> None:
    assert payment_event(payment_item("PROCESSING"), CREATED) is None
    assert payment_event({"pk": "ORDER#po_1", "sk": "GUARD", "payment_id": "pay_1"}, CREATED) is None


@pytest.mark.parametrize(
    ("status", "event_type", "failure_code"),
    [("PAID", "payout.paid", None), ("FAILED", "payout.failed", "account_closed")],
)
def test_a_payout_outcome_becomes_its_event(status: str, event_type: str, failure_code: str | None) -> None:
    sourced = payout_event(payout_item(status, failure_code=failure_code), CREATED)
    assert sourced is not None
    assert sourced.event.id == event_id(event_type, "po_pay_1") != event_id(event_type, "po_pay_2")
    assert sourced.event.data == {
        "payout_id": "po_pay_1",
        "seller_id": "seller_a",
        "amount": 3000,
        "currency": "USD",
        "status": status,
        "psp_reference": None,
        "failure_code": failure_code,
        "created_at": "2026-01-05T11:00:00.000000+00:00",
    }


@pytest.mark.parametrize("status", ["PROCESSING", "IN_TRANSIT"])
def test_payouts_on_their_way_are_not_events(status: str) -> None:
    assert payout_event(payout_item(status), CREATED) is None


def test_a_tenants_payment_is_its_event_told_in_its_own_ids() -> None:
    # Given acme's payment, stored under scoped ids (another tenant, "bigacme", is named in its metadata)
    item = payment_item("SUCCEEDED", payment_id="acme~pay_1", metadata={"note": "bigacme~x"})
    item["orders"] = [
        order | {"payment_order_id": f"acme~{order['payment_order_id']}", "seller_id": f"acme~{order['seller_id']}"}
        for order in item["orders"]
    ]
    default = payment_event(payment_item("SUCCEEDED"), CREATED)
    sourced = payment_event(item, CREATED)
    # Then it is acme's event, with its own id, and its data in the ids acme's client knows
    assert sourced is not None and default is not None
    assert (sourced.tenant_id, default.tenant_id) == ("acme", "default")
    assert sourced.event.id != default.event.id
    assert sourced.event.data == default.event.data | {"metadata": {"note": "bigacme~x"}}
    assert sourced.event.data["payment_id"] == "pay_1"


@pytest.mark.parametrize(
    ("status", "event_type", "failure_code"),
    [("SUCCEEDED", "refund.succeeded", None), ("FAILED", "refund.failed", "refund_declined"), ("PENDING", None, None)],
)
def test_a_refund_outcome_becomes_its_event(status: str, event_type: str | None, failure_code: str | None) -> None:
    item = {
        "refund_id": "re_1",
        "payment_order_id": "po_1",
        "amount": 500,
        "currency": "USD",
        "status": status,
        "failure_code": failure_code,
        "version": 3,
    }
    sourced = refund_event(item, CREATED)
    if event_type is None:
        assert sourced is None
        return
    assert sourced is not None and sourced.event.id == event_id(event_type, "re_1")
    assert sourced.event.data == {
        "refund_id": "re_1",
        "payment_order_id": "po_1",
        "amount": 500,
        "currency": "USD",
        "status": status,
        "failure_code": failure_code,
    }


def test_a_dispute_is_one_event_when_opened_and_one_when_closed() -> None:
    item = {
        "dispute_id": "dp_1",
        "payment_order_id": "po_1",
        "amount": 1099,
        "fee": 1500,
        "currency": "USD",
        "status": "OPEN",
        "reason": "fraudulent",
    }
    opened = dispute_event(item, CREATED)
    won = dispute_event({**item, "status": "WON"}, CREATED + 9)
    assert opened is not None and won is not None
    assert (opened.event.type, won.event.type) == ("dispute.created", "dispute.closed")
    assert opened.event.id == event_id("dispute.created", "dp_1") != won.event.id
    assert won.event.data == {**item, "status": "WON"}


def test_every_source_is_registered_with_its_mapping() -> None:
    assert {
        "payments": payment_event,
        "payouts": payout_event,
        "refunds": refund_event,
        "disputes": dispute_event,
    } == SOURCES


# -- recording once


class MemoryEvents:
    def __init__(self) -> None:
        self.stored: dict[str, tuple[SourcedEvent, str]] = {}

    def add(self, sourced: SourcedEvent, *, sequence: str) -> SourcedEvent | None:
        if sourced.event.id in self.stored:
            return self.stored[sourced.event.id][0]
        self.stored[sourced.event.id] = (sourced, sequence)
        return None


def test_a_change_is_recorded_once_however_often_it_is_replayed() -> None:
    events = MemoryEvents()
    image = payment_item("SUCCEEDED")
    # When the same stream record is handled three times
    outcomes = [
        recorder.record_change(payment_event, image, CREATED, events=events, recorded_at_ms=1000 + n)[0]
        for n in range(3)
    ]
    # Then one event is stored, at its first recording
    assert outcomes == ["recorded", "duplicate", "duplicate"]
    ((stored, sequence),) = events.stored.values()
    assert stored.event.id == event_id("payment.succeeded", "pay_1")
    assert sequence == f"{1000:015d}#{stored.event.id}"


def test_another_record_of_the_same_outcome_keeps_the_first_event() -> None:
    events = MemoryEvents()
    recorder.record_change(payout_event, payout_item("PAID"), CREATED, events=events, recorded_at_ms=1)
    outcome, stored = recorder.record_change(
        payout_event, payout_item("PAID"), CREATED + 5, events=events, recorded_at_ms=2
    )
    assert outcome == "duplicate" and stored is not None and stored.event.created == CREATED


def test_the_same_id_with_other_content_is_a_conflict_not_an_overwrite() -> None:
    events = MemoryEvents()
    recorder.record_change(payout_event, payout_item("PAID"), CREATED, events=events, recorded_at_ms=1)
    outcome, stored = recorder.record_change(
        payout_event, payout_item("PAID", amount=3001), CREATED, events=events, recorded_at_ms=2
    )
    assert outcome == "conflict"
    assert stored is not None and stored.event.data["amount"] == 3000
    assert len(events.stored) == 1


def test_a_change_that_is_no_outcome_records_nothing() -> None:
    events = MemoryEvents()
    outcome = recorder.record_change(payout_event, payout_item("IN_TRANSIT"), CREATED, events=events, recorded_at_ms=1)
    assert outcome == ("ignored", None)
    assert events.stored == {}


# -- signatures


def test_a_signature_verifies_with_its_secret_and_time_only() -> None:
    body = b'{"id":"evt_1","type":"payout.paid","created":1,"data":{}}'
    header = signing.signature_header("whsec_abc", 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert signing.verify(header, body, secret="whsec_abc", now=1_700_000_100)
    assert not signing.verify(header, body, secret="whsec_abd", now=1_700_000_100)
    assert not signing.verify(header, body + b" ", secret="whsec_abc", now=1_700_000_100)
    assert not signing.verify(header, body, secret="whsec_abc", now=1_700_000_301)  # too old: a replay
    assert not signing.verify(None, body, secret="whsec_abc", now=1_700_000_000)
    assert not signing.verify("t=1700000000", body, secret="whsec_abc", now=1_700_000_000)


def test_secrets_are_fresh_and_marked() -> None:
    first, second = signing.new_secret(), signing.new_secret()
    assert first != second and first.startswith("whsec_") and len(first) >= 40


# -- endpoints


class MemoryEndpoints:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Endpoint] = {}

    def insert(self, endpoint: Endpoint) -> bool:
        key = (endpoint.tenant_id, endpoint.endpoint_id)
        if key in self.items:
            return False
        self.items[key] = endpoint
        return True

    def get(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        return self.items.get((tenant_id, endpoint_id))

    def list(self, tenant_id: str) -> list[Endpoint]:
        return [e for (t, _), e in sorted(self.items.items()) if t == tenant_id]

    def delete(self, tenant_id: str, endpoint_id: str) -> bool:
        return self.items.pop((tenant_id, endpoint_id), None) is not None


class ReversingSealer:
    """Stands in for KMS: the ciphertext is bound to its endpoint, as the encryption context binds it."""

    def seal(self, secret: str, *, tenant_id: str, endpoint_id: str) -> bytes:
        return f"{tenant_id}|{endpoint_id}|{secret[::-1]}".encode()

    def open(self, ciphertext: bytes, *, tenant_id: str, endpoint_id: str) -> str:
        tenant, endpoint, sealed = ciphertext.decode().split("|")
        if (tenant, endpoint) != (tenant_id, endpoint_id):
            raise ValueError("the ciphertext belongs to another endpoint")
        return sealed[::-1]


def _register(store: MemoryEndpoints, request: EndpointRequest, key: str = "k1") -> tuple[Any, bool]:
    return endpoints.register(
        request,
        tenant_id="default",
        caller="api-key-1",
        idempotency_key=key,
        allow_loopback_http=False,
        store=store,
        sealer=ReversingSealer(),
        now=lambda: datetime(2026, 1, 5, tzinfo=UTC),
        make_secret=lambda: "whsec_first",
    )


def test_registering_stores_the_secret_sealed_and_a_retry_gets_the_same_endpoint() -> None:
    store = MemoryEndpoints()
    request = EndpointRequest(url="https://hooks.example.com/x", events=["payment.succeeded"])
    created, new = _register(store, request)
    assert new is True and created.secret == "whsec_first"
    ((stored),) = store.items.values()
    assert b"whsec_first" not in stored.secret_ciphertext
    # retried: the same endpoint and secret, not a new one
    again, new_again = _register(store, request)
    assert new_again is False and again == created and len(store.items) == 1
    # the same key with another body
    with pytest.raises(IdempotencyKeyReused):
        _register(store, EndpointRequest(url="https://hooks.example.com/y", events=["payment.succeeded"]))
    # another key: another endpoint
    other, _ = _register(store, request, key="k2")
    assert other.endpoint_id != created.endpoint_id
    assert [v.endpoint_id for v in endpoints.list_endpoints(tenant_id="default", store=store).data] == sorted(
        [created.endpoint_id, other.endpoint_id]
    )


def test_removing_an_unknown_endpoint_is_not_found() -> None:
    with pytest.raises(NotFound):
        endpoints.remove("we_missing", tenant_id="default", store=MemoryEndpoints())


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/payments",
        "https://hooks.example.com:8443/p?x=1",
    ],
)
def test_public_https_urls_are_accepted(url: str) -> None:
    endpoints.check_url(url, allow_loopback_http=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/",
        "https://127.0.0.1/",
        "https://localhost/",
        "https://169.254.169.254/latest",
        "https://[::1]/",
        "https://user:pw@hooks.example.com/",
        "https://intranet/",
        "https://hooks.example.com:99999/",
        "ftp://hooks.example.com/",
        "hooks.example.com",
        "http://127.0.0.1:8080/hooks",  # loopback, but this stack does not allow it
    ],
)
def test_other_urls_are_refused_naming_the_url(url: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        endpoints.check_url(url, allow_loopback_http=False)
    assert refused.value.param == "url"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hooks", "http://localhost:9000/", "http://[::1]:9000/"])
def test_loopback_http_is_accepted_where_the_stack_allows_it(url: str) -> None:
    endpoints.check_url(url, allow_loopback_http=True)


def test_loopback_allowance_does_not_open_other_http_hosts() -> None:
    with pytest.raises(InvalidRequest):
        endpoints.check_url("http://10.0.0.5/hooks", allow_loopback_http=True)


# -- fan-out and delivery

EVENT = Event(id="evt_1", type="payout.paid", created=CREATED, data={"payout_id": "po_pay_1", "amount": 3000})


class Deliveries:
    def __init__(self) -> None:
        self.messages: list[DeliveryMessage] = []

    def publish_many(self, messages: Sequence[DeliveryMessage]) -> None:
        self.messages.extend(messages)


def _endpoint(endpoint_id: str, events: list[str], secret: str = "whsec_s") -> Endpoint:
    return Endpoint(
        tenant_id="default",
        endpoint_id=endpoint_id,
        url=f"https://{endpoint_id}.example.com/",
        events=events,
        created_at="2026-01-05T00:00:00.000000+00:00",
        secret_ciphertext=ReversingSealer().seal(secret, tenant_id="default", endpoint_id=endpoint_id),
        request_fingerprint="f",
    )


def test_an_event_fans_out_to_each_subscribed_endpoint_once() -> None:
    store = MemoryEndpoints()
    for endpoint in (
        _endpoint("we_a", ["payout.paid"]),
        _endpoint("we_b", ["payment.succeeded"]),
        _endpoint("we_c", ["payout.paid", "payout.failed"]),
    ):
        store.insert(endpoint)
    queue = Deliveries()
    count = delivery.fan_out(TenantEvent(tenant_id="default", event=EVENT), endpoints=store, queue=queue)
    assert count == 2
    assert [(m.endpoint_id, m.event) for m in queue.messages] == [("we_a", EVENT), ("we_c", EVENT)]
    # another tenant's event reaches none of them
    other = Deliveries()
    assert delivery.fan_out(TenantEvent(tenant_id="acme", event=EVENT), endpoints=store, queue=other) == 0


class Transport:
    def __init__(self, status: int) -> None:
        self.status = status
        self.posts: list[tuple[str, bytes, Mapping[str, str]]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        self.posts.append((url, body, headers))
        return self.status


def _deliver(store: MemoryEndpoints, transport: Transport, endpoint_id: str = "we_a") -> str:
    message = DeliveryMessage(tenant_id="default", endpoint_id=endpoint_id, event=EVENT)
    return delivery.deliver(message, endpoints=store, sealer=ReversingSealer(), transport=transport, now=CREATED + 3)


def test_a_delivery_is_a_signed_post_of_the_event() -> None:
    store = MemoryEndpoints()
    store.insert(_endpoint("we_a", ["payout.paid"], secret="whsec_for_a"))
    transport = Transport(204)
    assert _deliver(store, transport) == "delivered"
    ((url, body, headers),) = transport.posts
    assert url == "https://we_a.example.com/"
    assert Event.model_validate_json(body) == EVENT
    assert headers["Content-Type"] == "application/json"
    assert signing.verify(headers["Payments-Signature"], body, secret="whsec_for_a", now=CREATED + 3)
    assert headers["Payments-Signature"].startswith(f"t={CREATED + 3},")


@pytest.mark.parametrize("status", [500, 404, 301, 429])
def test_a_non_2xx_answer_is_retried(status: int) -> None:
    store = MemoryEndpoints()
    store.insert(_endpoint("we_a", ["payout.paid"]))
    with pytest.raises(delivery.EndpointRefused) as refused:
        _deliver(store, Transport(status))
    assert refused.value.status == status


def test_a_removed_or_unsubscribed_endpoint_gets_nothing() -> None:
    store = MemoryEndpoints()
    store.insert(_endpoint("we_b", ["payment.succeeded"]))
    transport = Transport(200)
    assert _deliver(store, transport, "we_gone") == "endpoint_gone"
    assert _deliver(store, transport, "we_b") == "not_subscribed"
    assert transport.posts == []


# -- the event list


class Stored:
    def __init__(self, tenant_id: str, sequence: str, event: Event) -> None:
        self.tenant_id, self.sequence, self.event = tenant_id, sequence, event


class MemoryReader:
    def __init__(self, stored: list[Stored]) -> None:
        self.stored = stored

    def get(self, event_id: str) -> Stored | None:
        return next((s for s in self.stored if s.event.id == event_id), None)

    def after(self, tenant_id: str, *, event_type: str | None, sequence: str | None, limit: int) -> list[Event]:
        found = sorted(
            (s for s in self.stored if s.tenant_id == tenant_id and (event_type is None or s.event.type == event_type)),
            key=lambda s: s.sequence,
        )
        return [s.event for s in found if sequence is None or s.sequence > sequence][:limit]


def _events(count: int) -> MemoryReader:
    return MemoryReader(
        [Stored("default", f"{n:015d}#evt_{n}", EVENT.model_copy(update={"id": f"evt_{n}"})) for n in range(count)]
        + [Stored("acme", "000000000000000#evt_acme", EVENT.model_copy(update={"id": "evt_acme"}))]
    )


def test_events_are_listed_oldest_first_page_by_page() -> None:
    reader = _events(5)
    first = catalog.list_events(tenant_id="default", event_type=None, starting_after=None, limit=2, reader=reader)
    assert [e.id for e in first.data] == ["evt_0", "evt_1"] and first.has_more
    second = catalog.list_events(tenant_id="default", event_type=None, starting_after="evt_1", limit=2, reader=reader)
    assert [e.id for e in second.data] == ["evt_2", "evt_3"] and second.has_more
    last = catalog.list_events(tenant_id="default", event_type=None, starting_after="evt_3", limit=2, reader=reader)
    assert [e.id for e in last.data] == ["evt_4"] and not last.has_more


@pytest.mark.parametrize("cursor", ["evt_unknown", "evt_acme"])
def test_a_cursor_naming_no_event_of_the_tenant_is_refused(cursor: str) -> None:
    with pytest.raises(NotFound) as refused:
        catalog.list_events(tenant_id="default", event_type=None, starting_after=cursor, limit=2, reader=_events(2))
    assert (refused.value.param, refused.value.status_code, refused.value.code) == (
        "starting_after",
        404,
        "resource_missing",
    )


# -- settings


def test_the_recorder_knows_each_table_by_its_source() -> None:
    settings = EventRecorderSettings.model_validate(
        {"POWERTOOLS_SERVICE_NAME": "r", "EVENTS_TABLE_NAME": "e", "EVENT_SOURCE_TABLES": "payments=T1,payouts=T2"}
    )
    assert settings.source_by_table() == {"T1": "payments", "T2": "payouts"}


def test_deliveries_are_retried_for_three_days_within_the_queues_limits() -> None:
    policy = default_delivery_retry_policy()
    assert policy.max_age_seconds == 3 * 24 * 3600
    # the backstop maxReceiveCount fits SQS's limit, and the longest backoff SQS's visibility limit
    assert policy.worst_case_receives() == 151 <= 1000
    assert policy.ceiling(100) == 3600 <= 43_200
    assert policy.ceiling(1) == 30
