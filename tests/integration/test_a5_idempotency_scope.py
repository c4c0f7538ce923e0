"""Issue 11 A5 through the payment API handler, on the template's tables in moto: Idempotency-Keys are
scoped per API key, and a key reused with another body is refused even after its idempotency record
has expired."""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from typing import Any

import boto3

from local_stack.deploy import LocalCloud
from tests.integration.conftest import api_event, context
from tests.support.api import checkout

HANDLER = "functions.payment.api.api_handler"


def _handler_module(use_function_env: Callable[[str], None]) -> Any:
    use_function_env(HANDLER)
    module = importlib.import_module("functions.payment.api")
    module._api.cache_clear()
    return module


def _post(handler: Any, body: dict[str, Any], key: str, api_key_id: str | None) -> dict[str, Any]:
    event = api_event("POST", "/v1/payments", body, {"Idempotency-Key": key}, api_key_id=api_key_id)
    response: dict[str, Any] = handler.api_handler(event, context())
    return response


def _payments_items(cloud: LocalCloud) -> list[dict[str, Any]]:
    table = next(n for k, n in cloud.names_of("AWS::DynamoDB::Table").items() if "PaymentsTable" in k)
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return items


def _expire_idempotency_records() -> None:
    """What DynamoDB's TTL does to the idempotency records after 24 hours: they are gone."""
    dynamodb = boto3.client("dynamodb")
    table = os.environ["IDEMPOTENCY_TABLE_NAME"]
    for item in dynamodb.scan(TableName=table)["Items"]:
        dynamodb.delete_item(TableName=table, Key={"id": item["id"]})


def test_a5_the_same_key_under_two_api_keys_makes_two_payments(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    handler = _handler_module(use_function_env)

    # Given two API keys send different checkouts under the same Idempotency-Key
    first = _post(handler, checkout(("seller_a", 1000)), "shared-key", "key-id-a")
    second = _post(handler, checkout(("seller_b", 2500)), "shared-key", "key-id-b")

    # Then both are accepted as two payments, neither a replay of the other
    assert (first["statusCode"], second["statusCode"]) == (202, 202)
    assert "Idempotent-Replayed" not in second["multiValueHeaders"]
    payments = [json.loads(r["body"]) for r in (first, second)]
    assert payments[0]["payment_id"] != payments[1]["payment_id"]
    assert [p["amount"] for p in payments] == [1000, 2500]
    stored = sorted(i["amount"]["N"] for i in _payments_items(cloud) if i["sk"]["S"] == "PAYMENT")
    assert stored == ["1000", "2500"]


def test_a5_a_reused_key_with_another_body_is_422_before_and_after_its_record_expires(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    handler = _handler_module(use_function_env)
    original_body = checkout(("seller_a", 1000))
    original = _post(handler, original_body, "key-1", "key-id-a")
    assert original["statusCode"] == 202
    other_body = checkout(("seller_a", 5))

    # While the idempotency record lives, another body under the key is refused
    early = _post(handler, other_body, "key-1", "key-id-a")
    assert early["statusCode"] == 422
    assert json.loads(early["body"])["error"] == {
        "type": "idempotency_error",
        "code": "idempotency_key_reused",
        "message": "This Idempotency-Key was used with a different request body.",
        "param": "Idempotency-Key",
    }

    # When the record has expired and the other body comes again
    _expire_idempotency_records()
    late = _post(handler, other_body, "key-1", "key-id-a")

    # Then it is still refused, the same way, and its order id is not claimed
    assert late["statusCode"] == 422
    assert json.loads(late["body"]) == json.loads(early["body"])
    items = _payments_items(cloud)
    assert sorted(i["pk"]["S"] for i in items) == sorted(
        [
            f"ORDER#{original_body['orders'][0]['payment_order_id']}",
            f"PAYMENT#{json.loads(original['body'])['payment_id']}",
        ]
    )

    # And the original body after expiry still answers the original payment
    _expire_idempotency_records()
    again = _post(handler, original_body, "key-1", "key-id-a")
    assert again["statusCode"] == 202
    assert json.loads(again["body"]) == json.loads(original["body"])


def test_a5_a_request_without_an_api_key_id_is_refused_and_stores_nothing(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    handler = _handler_module(use_function_env)

    response = _post(handler, checkout(("seller_a", 1000)), "key-2", None)

    assert response["statusCode"] == 403
    assert json.loads(response["body"])["error"]["type"] == "authentication_error"
    assert json.loads(response["body"])["error"]["code"] == "api_key_missing"
    assert _payments_items(cloud) == []
    assert boto3.client("dynamodb").scan(TableName=os.environ["IDEMPOTENCY_TABLE_NAME"])["Items"] == []
