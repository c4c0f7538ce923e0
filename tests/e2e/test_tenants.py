"""Tenants over the local stack's real HTTP: a second marketplace, with a key of its own, sends the same
checkout as the default tenant (same order ids, sellers and Idempotency-Key). Both are charged once each,
each sees only its own payment, wallet and events, in the ids it sent; the routes whose records are not
scoped by tenant yet refuse it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.common.tenant_store import KEY_PREFIX, TENANT_PREFIX
from functions.events.sources import event_id
from local_stack.api_server import local_api_key_id
from local_stack.stack import LocalStack
from tests.e2e.conftest import TENANT_API_KEY
from tests.support.api import ApiClient, checkout, new_key, unique

TENANT = "acme-e2e"


@pytest.fixture(scope="module")
def tenant_api(stack: LocalStack, aws: Any) -> ApiClient:
    """The tenant's key, registered before its first request (as `payments tenants` does): the tenant's item
    and its key's, in one transaction, in the local cloud's tenants table."""
    assert stack.cloud is not None
    table = next(n for k, n in stack.cloud.names_of("AWS::DynamoDB::Table").items() if "TenantsTable" in k)
    created = datetime.now(UTC).isoformat()
    aws("dynamodb").transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": table,
                    "Item": {"pk": {"S": pk}, "tenant_id": {"S": TENANT}, "created_at": {"S": created}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for pk in (f"{TENANT_PREFIX}{TENANT}", f"{KEY_PREFIX}{local_api_key_id(TENANT_API_KEY)}")
        ]
    )
    return ApiClient(stack.api_url, TENANT_API_KEY)


def _events_of(client: ApiClient, event_type: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = client.get(f"/v1/events?type={event_type}&limit=100{cursor}")
        assert page.status == 200, page.body
        listed += page.body["data"]
        if not page.body["has_more"]:
            return listed
        cursor = f"&starting_after={listed[-1]['id']}"


def test_two_tenants_send_the_same_checkout_and_each_sees_only_its_own(api: ApiClient, tenant_api: ApiClient) -> None:
    seller = unique("seller_tn")
    body, key = checkout((seller, 1500), (unique("seller_tn"), 700)), new_key()

    # Given the default tenant and another send the same checkout under the same Idempotency-Key
    default_accepted = api.post("/v1/payments", body, idempotency_key=key)
    tenant_accepted = tenant_api.post("/v1/payments", body, idempotency_key=key)

    # Then both are accepted, as two payments told in the ids each sent
    assert (default_accepted.status, tenant_accepted.status) == (202, 202), tenant_accepted.body
    default_id, tenant_id = default_accepted.body["payment_id"], tenant_accepted.body["payment_id"]
    assert default_id != tenant_id and "~" not in tenant_id
    sent = [o["payment_order_id"] for o in body["orders"]]
    assert [o["payment_order_id"] for o in tenant_accepted.body["orders"]] == sent

    # And both are charged once each and settle
    assert api.wait_for_payment(default_id)["status"] == "SUCCEEDED"
    settled = tenant_api.wait_for_payment(tenant_id)
    assert settled["status"] == "SUCCEEDED"
    assert [(o["payment_order_id"], o["seller_id"], o["status"]) for o in settled["orders"]] == [
        (o["payment_order_id"], o["seller_id"], "SUCCEEDED") for o in body["orders"]
    ]

    # And each reads only its own payment: the other's id is not found
    assert api.get(f"/v1/payments/{tenant_id}").status == 404
    assert tenant_api.get(f"/v1/payments/{default_id}").status == 404

    # And the same seller id is two wallets, each credited once
    for client in (api, tenant_api):
        wallet = client.get(f"/v1/wallets/{seller}")
        assert wallet.status == 200
        assert wallet.body["seller_id"] == seller
        assert wallet.body["balances"]["USD"]["available"] == 1500

    # And each tenant's events list its own payment only, in its own ids
    tenant_event = event_id("payment.succeeded", f"{TENANT}~{tenant_id}")
    deadline = time.monotonic() + 60
    while not (listed := [e for e in _events_of(tenant_api, "payment.succeeded") if e["id"] == tenant_event]):
        assert time.monotonic() < deadline, "the tenant's payment.succeeded event was not recorded"
        time.sleep(1)
    assert listed[0]["data"]["payment_id"] == tenant_id
    assert [o["payment_order_id"] for o in listed[0]["data"]["orders"]] == sent
    assert {e["data"]["payment_id"] for e in _events_of(tenant_api, "payment.succeeded")} == {tenant_id}
    refused = api.get(f"/v1/events?starting_after={tenant_event}")
    assert (refused.status, refused.body["error"]["code"]) == (404, "resource_missing")


def test_routes_not_scoped_by_tenant_yet_refuse_another_tenant(tenant_api: ApiClient) -> None:
    for method, path, payload in (
        ("POST", "/v1/refunds", {"payment_order_id": "po_x", "amount": 100}),
        ("POST", "/v1/payouts", {"seller_id": "seller_x", "amount": 100, "currency": "USD"}),
        ("GET", "/v1/ledger/trial-balance", None),
        ("GET", "/v1/sellers/seller_x", None),
    ):
        refused = tenant_api.request(
            method, path, body=payload, idempotency_key=new_key() if method == "POST" else None
        )
        assert (refused.status, refused.body["error"]["code"]) == (403, "tenant_not_served"), (method, path)
