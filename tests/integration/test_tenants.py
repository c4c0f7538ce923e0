"""Tenants, on the template's tables in moto: the directory maps each registered API key to its tenant,
an unregistered key is the default tenant's, and the webhook endpoints and events a tenant sees through
the API are its own only."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.common import api as common_api
from functions.common.tenant_store import DynamoTenantDirectory, KeyRegistered, TenantExists
from functions.common.tenants import DEFAULT_TENANT, Tenant
from functions.events.event_store import DynamoEventStore
from functions.events.models import Event
from functions.events.sources import SourcedEvent
from local_stack.deploy import LocalCloud
from tests.integration.conftest import API_KEY_ID, api_event, context
from tests.support.api import checkout

HANDLER = "functions.events.api.api_handler"
ACME_KEY_ID = "key-id-acme"
CREATED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _table(cloud: LocalCloud, logical: str) -> str:
    return next(name for key, name in cloud.names_of("AWS::DynamoDB::Table").items() if logical in key)


def _directory(cloud: LocalCloud) -> DynamoTenantDirectory:
    return DynamoTenantDirectory(_table(cloud, "TenantsTable"))


@pytest.fixture
def events_api(cloud: LocalCloud, use_function_env: Callable[[str], None]) -> Any:
    use_function_env(HANDLER)
    common_api.KEY_TENANTS.clear()
    module = importlib.import_module("functions.events.api")
    _directory(cloud).register(Tenant(tenant_id="acme", created_at=CREATED), ACME_KEY_ID)
    yield module
    common_api.KEY_TENANTS.clear()


def _call(
    module: Any,
    method: str,
    path: str,
    api_key_id: str,
    body: Any = None,
    query: dict[str, str] | None = None,
    idempotency_key: str = "the-same-key",
    **kwargs: Any,
) -> tuple[int, dict[str, Any]]:
    # Every caller sends the same Idempotency-Key unless told otherwise: keys never meet across API keys.
    headers = {"Idempotency-Key": idempotency_key} if method == "POST" else {}
    event = api_event(method, path, body, headers, api_key_id=api_key_id, **kwargs)
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in (query or {}).items()} or None
    response = module.api_handler(event, context())
    return response["statusCode"], json.loads(response["body"])


def test_the_directory_maps_registered_keys_and_takes_each_tenant_id_once(cloud: LocalCloud) -> None:
    directory = _directory(cloud)
    directory.register(Tenant(tenant_id="acme", created_at=CREATED), "k1")
    assert directory.tenant_of_key("k1") == "acme"
    assert directory.tenant_of_key("k-unknown") is None

    # A second registration of the same id is refused, and its key is not registered either
    with pytest.raises(TenantExists):
        directory.register(Tenant(tenant_id="acme", created_at=CREATED), "k2")
    assert directory.tenant_of_key("k2") is None
    # A retry of a registration that committed is that registration; a key already another's is refused
    directory.register(Tenant(tenant_id="acme", created_at=CREATED), "k1")
    with pytest.raises(KeyRegistered):
        directory.register(Tenant(tenant_id="initech", created_at=CREATED), "k1")
    assert directory.tenant_of_key("k1") == "acme"
    directory.register(Tenant(tenant_id="globex", created_at=CREATED), "k3")
    assert [t.tenant_id for t in directory.tenants()] == ["acme", "globex"]  # not initech
    assert directory.tenants()[0].created_at == CREATED


def test_each_tenant_sees_and_removes_only_its_own_webhook_endpoints(events_api: Any) -> None:
    # Given the default tenant's key and acme's key each register an endpoint
    default_status, default_endpoint = _call(
        events_api,
        "POST",
        "/v1/webhook-endpoints",
        API_KEY_ID,
        {"url": "https://a.example/hook", "events": ["payment.succeeded"]},
    )
    acme_status, acme_endpoint = _call(
        events_api,
        "POST",
        "/v1/webhook-endpoints",
        ACME_KEY_ID,
        {"url": "https://b.example/hook", "events": ["payment.failed"]},
    )
    assert (default_status, acme_status) == (201, 201)

    # Then each lists only its own
    listed = {
        key: [e["endpoint_id"] for e in _call(events_api, "GET", "/v1/webhook-endpoints", key)[1]["data"]]
        for key in (API_KEY_ID, ACME_KEY_ID)
    }
    assert listed == {API_KEY_ID: [default_endpoint["endpoint_id"]], ACME_KEY_ID: [acme_endpoint["endpoint_id"]]}

    # And acme cannot remove the default tenant's endpoint: it is not found, and it stays
    other = default_endpoint["endpoint_id"]
    status, body = _call(
        events_api, "DELETE", f"/v1/webhook-endpoints/{other}", ACME_KEY_ID, path_parameters={"endpoint_id": other}
    )
    assert (status, body["error"]["code"]) == (404, "resource_missing")
    assert [e["endpoint_id"] for e in _call(events_api, "GET", "/v1/webhook-endpoints", API_KEY_ID)[1]["data"]] == [
        other
    ]


def test_each_tenant_lists_only_its_own_events(cloud: LocalCloud, events_api: Any) -> None:
    store = DynamoEventStore(_table(cloud, "EventsEventsTable"))
    for sequence, tenant in enumerate((DEFAULT_TENANT, "acme", DEFAULT_TENANT), start=1):
        event = Event(id=f"evt_{sequence}", type="payout.paid", created=1_764_579_600 + sequence, data={"n": sequence})
        store.add(SourcedEvent(tenant_id=tenant, event=event), sequence=f"{sequence:020d}")

    listed = {
        key: [e["id"] for e in _call(events_api, "GET", "/v1/events", key)[1]["data"]]
        for key in (API_KEY_ID, ACME_KEY_ID)
    }
    assert listed == {API_KEY_ID: ["evt_1", "evt_3"], ACME_KEY_ID: ["evt_2"]}
    # Another tenant's event id is not a place to start from
    status, body = _call(events_api, "GET", "/v1/events", ACME_KEY_ID, query={"starting_after": "evt_1"})
    assert (status, body["error"]["code"], body["error"]["param"]) == (404, "resource_missing", "starting_after")


def test_a_directory_that_cannot_answer_fails_the_request_rather_than_guess_the_default_tenant(
    events_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENANTS_TABLE_NAME", "no-such-table")
    # The invocation fails (API Gateway answers 502), and the next one asks again rather than use a guess
    for _ in range(2):
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            _call(events_api, "GET", "/v1/webhook-endpoints", ACME_KEY_ID)


@pytest.fixture
def payment_api(cloud: LocalCloud, use_function_env: Callable[[str], None]) -> Any:
    use_function_env("functions.payment.api.api_handler")
    common_api.KEY_TENANTS.clear()
    module = importlib.import_module("functions.payment.api")
    module._api.cache_clear()
    _directory(cloud).register(Tenant(tenant_id="acme", created_at=CREATED), ACME_KEY_ID)
    yield module
    common_api.KEY_TENANTS.clear()


def _stored_order_ids(cloud: LocalCloud) -> list[str]:
    items = boto3.client("dynamodb").scan(TableName=_table(cloud, "PaymentsTable"))["Items"]
    return sorted(o["M"]["payment_order_id"]["S"] for i in items if i["sk"]["S"] == "PAYMENT" for o in i["orders"]["L"])


def test_two_tenants_use_the_same_order_ids_and_idempotency_key_without_meeting(
    cloud: LocalCloud, payment_api: Any
) -> None:
    # Given the default tenant and acme send the same checkout under the same Idempotency-Key
    body = checkout(("seller_a", 1000), ("seller_b", 2500))
    posted = {key: _call(payment_api, "POST", "/v1/payments", key, body) for key in (API_KEY_ID, ACME_KEY_ID)}

    # Then both are accepted as two payments, each told in the ids its client sent
    assert {key: status for key, (status, _) in posted.items()} == {API_KEY_ID: 202, ACME_KEY_ID: 202}
    payments = {key: payment for key, (_, payment) in posted.items()}
    assert payments[API_KEY_ID]["payment_id"] != payments[ACME_KEY_ID]["payment_id"]
    for payment in payments.values():
        assert [(o["payment_order_id"], o["seller_id"]) for o in payment["orders"]] == [
            (o["payment_order_id"], o["seller_id"]) for o in body["orders"]
        ]
    # And acme's orders are stored under its scoped ids, beside the default tenant's
    order_ids = [o["payment_order_id"] for o in body["orders"]]
    assert _stored_order_ids(cloud) == sorted(order_ids + [f"acme~{i}" for i in order_ids])

    # And within one tenant an order id is still taken once
    again = checkout(("seller_c", 700))
    again["orders"][0]["payment_order_id"] = order_ids[0]
    status, error = _call(payment_api, "POST", "/v1/payments", ACME_KEY_ID, again, idempotency_key="another-key")
    assert (status, error["error"]["code"]) == (409, "duplicate_payment_order")
    assert error["error"]["message"] == f"payment_order_id {order_ids[0]} belongs to an earlier payment."


def test_a_tenant_reads_its_own_payment_and_another_tenants_is_not_found(payment_api: Any) -> None:
    _, acme_payment = _call(payment_api, "POST", "/v1/payments", ACME_KEY_ID, checkout(("seller_a", 1000)))
    payment_id = acme_payment["payment_id"]
    assert "~" not in payment_id

    def read(key: str) -> tuple[int, dict[str, Any]]:
        path = f"/v1/payments/{payment_id}"
        return _call(payment_api, "GET", path, key, path_parameters={"payment_id": payment_id})

    status, payment = read(ACME_KEY_ID)
    assert (status, payment["payment_id"], payment["amount"]) == (200, payment_id, 1000)
    status, error = read(API_KEY_ID)
    assert (status, error["error"]["code"]) == (404, "resource_missing")
    # A client cannot name a scoped id itself: the separator is not in any id's alphabet
    scoped = f"acme~{payment_id}"
    status, error = _call(
        payment_api, "GET", f"/v1/payments/{scoped}", API_KEY_ID, path_parameters={"payment_id": scoped}
    )
    assert status == 400


def test_a_route_whose_records_are_not_scoped_yet_refuses_another_tenant_and_writes_nothing(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    use_function_env("functions.payout.api.api_handler")
    common_api.KEY_TENANTS.clear()
    _directory(cloud).register(Tenant(tenant_id="acme", created_at=CREATED), ACME_KEY_ID)
    module = importlib.import_module("functions.payout.api")
    payout = {"seller_id": "seller_a", "amount": 1000, "currency": "USD"}

    status, error = _call(module, "POST", "/v1/payouts", ACME_KEY_ID, payout)

    assert (status, error["error"]["code"]) == (403, "tenant_not_served")
    assert boto3.client("dynamodb").scan(TableName=_table(cloud, "PayoutsTable"))["Items"] == []
    # The default tenant is still served there (this seller has no payout account: 422, as before)
    status, error = _call(module, "POST", "/v1/payouts", API_KEY_ID, payout)
    assert (status, error["error"]["code"]) == (422, "payout_account_missing")
    common_api.KEY_TENANTS.clear()
