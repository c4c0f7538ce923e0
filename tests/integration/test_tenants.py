"""Tenants, on the template's tables in moto: the directory maps each registered API key to its tenant,
an unregistered key is the default tenant's, and the webhook endpoints and events a tenant sees through
the API are its own only."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.common import api as common_api
from functions.common.tenant_store import DynamoTenantDirectory, TenantExists
from functions.common.tenants import DEFAULT_TENANT, Tenant
from functions.events.event_store import DynamoEventStore
from functions.events.models import Event
from functions.events.sources import SourcedEvent
from local_stack.deploy import LocalCloud
from tests.integration.conftest import API_KEY_ID, api_event, context

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
    common_api._tenant_of_key.cache_clear()
    module = importlib.import_module("functions.events.api")
    _directory(cloud).register(Tenant(tenant_id="acme", created_at=CREATED), ACME_KEY_ID)
    yield module
    common_api._tenant_of_key.cache_clear()


def _call(
    module: Any,
    method: str,
    path: str,
    api_key_id: str,
    body: Any = None,
    query: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, dict[str, Any]]:
    headers = {"Idempotency-Key": f"{api_key_id}-{path}"} if method == "POST" else {}
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
    directory.register(Tenant(tenant_id="globex", created_at=CREATED), "k3")
    assert [t.tenant_id for t in directory.tenants()] == ["acme", "globex"]
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
