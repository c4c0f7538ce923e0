"""Events for the marketplace, end to end through the local stack: a webhook endpoint on loopback registered
through the API receives every payment and payout outcome as one signed event, retried after its 500s with
the same id and body; GET /v1/events lists the same events; removing the endpoint stops its deliveries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from functions.events.models import EVENT_TYPES
from functions.events.signing import SECRET_PREFIX
from functions.events.sources import event_id
from tests.e2e.test_payouts import wait_for_payout
from tests.support.api import ApiClient, checkout, new_key, unique
from tests.support.bank_accounts import CLOSED_US_ACCOUNT, us_account_body
from tests.support.webhook_receiver import WebhookReceiver

OUTCOME_TYPES = ["payment.succeeded", "payment.partially_failed", "payment.failed", "payout.paid", "payout.failed"]


@pytest.fixture
def receiver(api: ApiClient) -> Iterator[tuple[WebhookReceiver, dict[str, Any]]]:
    server = WebhookReceiver(failures_per_event=2)
    server.start()
    created = api.post("/v1/webhook-endpoints", {"url": server.url, "events": list(EVENT_TYPES)})
    assert created.status == 201, created.body
    server.secret = created.body["secret"]
    try:
        yield server, created.body
    finally:
        # Removed, so that nothing more is delivered to a server that is about to stop.
        api.request("DELETE", f"/v1/webhook-endpoints/{created.body['endpoint_id']}")
        server.stop()


def _payment(api: ApiClient, *orders: tuple[str, int] | tuple[str, int, str]) -> dict[str, Any]:
    accepted = api.post("/v1/payments", checkout(*orders))
    assert accepted.status == 202, accepted.body
    return api.wait_for_payment(accepted.body["payment_id"], timeout=240)


def _all_events(api: ApiClient, query: str = "") -> list[dict[str, Any]]:
    """Every event, page after page (limit 5), following starting_after."""
    events: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = api.get(f"/v1/events?limit=5{query}{cursor}")
        assert page.status == 200, page.body
        assert len(page.body["data"]) <= 5
        events.extend(page.body["data"])
        if not page.body["has_more"]:
            return events
        cursor = f"&starting_after={page.body['data'][-1]['id']}"


@pytest.mark.timeout(900)  # five outcomes, each delivered three times, on a shared machine
def test_an_endpoint_receives_every_outcome_signed_and_retried_with_a_stable_id(
    api: ApiClient, receiver: tuple[WebhookReceiver, dict[str, Any]]
) -> None:
    server, endpoint = receiver
    # Given an endpoint registered for every event type, whose secret starts with whsec_
    assert endpoint["secret"].startswith(SECRET_PREFIX) and endpoint["url"] == server.url
    assert set(endpoint["events"]) == set(EVENT_TYPES)

    # When a payment succeeds, one partially fails, one fails, a payout is paid and one fails (all at once)
    seller, closed = unique("seller"), unique("seller")
    api.onboard(seller, us_account_body(seller))
    api.onboard(closed, us_account_body(closed, account_number=CLOSED_US_ACCOUNT))
    accepted = [
        api.post("/v1/payments", checkout(*orders)).body["payment_id"]
        for orders in (
            [(seller, 4000)],
            [(seller, 1000), (unique("seller"), 700, "tok_chargeDeclined")],
            [(unique("seller"), 900, "tok_insufficient_funds")],
            [(closed, 2500)],
        )
    ]
    succeeded, partial, failed, funding = (api.wait_for_payment(p, timeout=240) for p in accepted)
    statuses = [succeeded["status"], partial["status"], failed["status"], funding["status"]]
    assert statuses == ["SUCCEEDED", "PARTIALLY_FAILED", "FAILED", "SUCCEEDED"]
    paid = api.post("/v1/payouts", {"seller_id": seller, "amount": 3000, "currency": "USD"}).body["payout_id"]
    refused = api.post("/v1/payouts", {"seller_id": closed, "amount": 2500, "currency": "USD"}).body["payout_id"]
    assert wait_for_payout(api, paid, timeout=180)["status"] == "PAID"
    assert wait_for_payout(api, refused, timeout=180)["status"] == "FAILED"

    # Then each outcome arrives as one event whose id derives from the outcome
    expected = {
        event_id("payment.succeeded", succeeded["payment_id"]): ("payment.succeeded", succeeded["payment_id"]),
        event_id("payment.partially_failed", partial["payment_id"]): (
            "payment.partially_failed",
            partial["payment_id"],
        ),
        event_id("payment.failed", failed["payment_id"]): ("payment.failed", failed["payment_id"]),
        event_id("payout.paid", paid): ("payout.paid", paid),
        event_id("payout.failed", refused): ("payout.failed", refused),
    }
    attempts = server.wait_delivered(list(expected), timeout=240)
    for eid, (event_type, object_id) in expected.items():
        tries = attempts[eid]
        # answered 500, 500, then 200: retried, with the same id and the very same body every time
        assert [a.answered for a in tries[:3]] == [500, 500, 200], eid
        assert {a.event_type for a in tries} == {event_type}
        assert all(a.body == tries[0].body for a in tries)
        assert all(a.signature_valid for a in tries), [a.signature for a in tries]
        # each attempt was signed for its own time
        assert len({a.signature for a in tries}) == len(tries)
        # with backoff: the retries came later, not at once
        assert tries[2].received_at - tries[0].received_at >= 1.0
        data = tries[0].body["data"]
        assert data.get("payment_id", data.get("payout_id")) == object_id
        assert set(tries[0].body) == {"id", "type", "created", "data"}
    assert attempts[event_id("payout.failed", refused)][0].body["data"]["failure_code"] == "account_closed"
    partial_orders = attempts[event_id("payment.partially_failed", partial["payment_id"])][0].body["data"]["orders"]
    assert sorted(o["status"] for o in partial_orders) == ["FAILED", "SUCCEEDED"]
    # And the outcome types seen are exactly the five
    assert {attempts[e][0].event_type for e in expected} == set(OUTCOME_TYPES)

    # And GET /v1/events lists the same events, oldest first, page by page
    listed = {e["id"]: e for e in _all_events(api)}
    for eid in expected:
        assert listed[eid] == attempts[eid][0].body
    # And a type filter returns only that type
    only_paid = _all_events(api, "&type=payout.paid")
    assert {e["type"] for e in only_paid} == {"payout.paid"}
    assert event_id("payout.paid", paid) in {e["id"] for e in only_paid}
    # And the succeeded payment's event is listed before the payouts' (recorded earlier)
    order = [e["id"] for e in _all_events(api)]
    assert order.index(event_id("payment.succeeded", succeeded["payment_id"])) < order.index(
        event_id("payout.paid", paid)
    )


def test_endpoints_are_registered_idempotently_listed_without_secrets_and_removed(api: ApiClient) -> None:
    # Given a registration
    key = new_key()
    body = {"url": "https://marketplace.example/hooks", "events": ["payment.succeeded", "payout.paid"]}
    first = api.post("/v1/webhook-endpoints", body, idempotency_key=key)
    assert first.status == 201, first.body
    endpoint_id = first.body["endpoint_id"]
    try:
        # When it is retried with the same key and body: the same endpoint and secret, marked as a replay
        again = api.post("/v1/webhook-endpoints", body, idempotency_key=key)
        assert again.status == 201 and again.body == first.body
        assert again.headers.get("idempotent-replayed") == "true"
        assert "idempotent-replayed" not in first.headers
        # And the same key with another body is refused
        other = api.post("/v1/webhook-endpoints", {**body, "events": ["payout.failed"]}, idempotency_key=key)
        assert other.status == 422 and other.body["error"]["code"] == "idempotency_key_reused"

        # Then the list shows it without its secret
        listed = api.get("/v1/webhook-endpoints")
        assert listed.status == 200
        mine = [e for e in listed.body["data"] if e["endpoint_id"] == endpoint_id]
        assert mine == [
            {
                "endpoint_id": endpoint_id,
                "url": body["url"],
                "events": body["events"],
                "created_at": first.body["created_at"],
            }
        ]
        assert first.body["secret"] not in str(listed.body)
    finally:
        # When it is removed: 200, then 404, and it is no longer listed
        removed = api.request("DELETE", f"/v1/webhook-endpoints/{endpoint_id}")
        assert removed.status == 200 and removed.body == {"endpoint_id": endpoint_id, "deleted": True}
    assert api.request("DELETE", f"/v1/webhook-endpoints/{endpoint_id}").status == 404
    assert endpoint_id not in {e["endpoint_id"] for e in api.get("/v1/webhook-endpoints").body["data"]}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": "http://marketplace.example/hooks", "events": ["payment.succeeded"]}, "url"),
        ({"url": "https://10.0.0.1/hooks", "events": ["payment.succeeded"]}, "url"),
        ({"url": "https://user:pw@marketplace.example/", "events": ["payment.succeeded"]}, "url"),
        ({"url": "not a url", "events": ["payment.succeeded"]}, "url"),
        ({"url": "https://marketplace.example/", "events": ["payment.created"]}, "events[0]"),
        ({"url": "https://marketplace.example/", "events": []}, "events"),
        ({"url": "https://marketplace.example/", "events": ["payout.paid", "payout.paid"]}, "events"),
    ],
)
def test_bad_endpoints_are_refused_with_the_field_named(api: ApiClient, body: dict[str, Any], param: str) -> None:
    before = api.get("/v1/webhook-endpoints").body["data"]
    refused = api.post("/v1/webhook-endpoints", body)
    assert refused.status == 400, refused.body
    assert refused.body["error"]["param"] == param
    assert api.get("/v1/webhook-endpoints").body["data"] == before


def test_event_list_refuses_an_unknown_cursor_type_or_limit(api: ApiClient) -> None:
    for query, status, param in (
        ("starting_after=evt_unknown", 404, "starting_after"),
        ("type=payment.created", 400, "type"),
        ("limit=0", 400, "limit"),
        ("limit=101", 400, "limit"),
    ):
        refused = api.get(f"/v1/events?{query}")
        assert refused.status == status, (query, refused.body)
        assert refused.body["error"]["param"] == param


@pytest.mark.timeout(600)
def test_a_removed_endpoint_gets_no_more_retries(api: ApiClient) -> None:
    # Given an endpoint that always answers 500, for succeeded payments
    server = WebhookReceiver(failures_per_event=1_000)
    server.start()
    try:
        created = api.post("/v1/webhook-endpoints", {"url": server.url, "events": ["payment.succeeded"]})
        assert created.status == 201
        server.secret = created.body["secret"]
        payment = _payment(api, (unique("seller"), 1200))
        eid = event_id("payment.succeeded", payment["payment_id"])
        deadline = time.monotonic() + 240
        while len(server.of(eid)) < 2:
            assert time.monotonic() < deadline, "no retry seen"
            time.sleep(0.2)
        # When it is removed
        assert api.request("DELETE", f"/v1/webhook-endpoints/{created.body['endpoint_id']}").status == 200
        # Then its pending retry is dropped: no attempt arrives after the next backoff has passed
        time.sleep(1.0)  # an attempt already in flight when it was removed
        seen = len(server.of(eid))
        time.sleep(8.0)  # past the local backoff cap (4 s) twice
        assert len(server.of(eid)) == seen
        assert all(a.signature_valid for a in server.of(eid))
    finally:
        server.stop()
