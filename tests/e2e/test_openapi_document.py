"""The OpenAPI document the local stack serves says what the API answers, and /docs shows it in a browser
from assets the stack serves itself."""

from __future__ import annotations

import re
from typing import Any

import pytest
import urllib3
from aws_lambda_powertools.event_handler.openapi import swagger_ui

from functions.common.ids import ID_PATTERN
from functions.common.money import CURRENCY_EXPONENTS, LARGEST_AMOUNT_MINOR, MAX_AMOUNT_MINOR, TWELVE_DIGIT_CURRENCIES
from local_stack.stack import LocalStack
from tests.support.api import ApiClient

ERROR_REF = "#/components/schemas/ErrorResponse"
PUBLIC = {("GET", "/health"), ("POST", "/v1/webhooks/psp"), ("POST", "/v1/webhooks/payout-provider")}


@pytest.fixture(scope="module")
def document(api: ApiClient) -> dict[str, Any]:
    result = api.get("/openapi.json")
    assert result.status == 200
    assert result.headers["content-type"] == "application/json"
    return dict(result.body)


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, item in document["paths"].items() for method, op in item.items()}


def test_every_route_of_the_template_and_the_health_check_is_an_operation(
    document: dict[str, Any], stack: LocalStack
) -> None:
    assert stack.cloud is not None
    routes = {(r.method, r.path) for r in stack.cloud.routes}
    assert set(_operations(document)) == routes | {("GET", "/health")}


def test_every_error_status_has_the_one_error_schema_and_validation_is_400(document: dict[str, Any]) -> None:
    for key, operation in _operations(document).items():
        responses = operation["responses"]
        successes = [code for code in responses if code.startswith("2")]
        assert len(successes) == 1, key
        for code, response in responses.items():
            if not code.startswith("2"):
                assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (key, code)
        if key == ("GET", "/health"):
            continue
        assert "429" in responses, key
        if "parameters" in operation or "requestBody" in operation:
            assert "400" in responses, key
        assert ("403" in responses) == (key not in PUBLIC), key
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["ErrorResponse"]["required"] == ["error"]
    assert set(schemas["ErrorDetail"]["properties"]) == {"type", "code", "message", "param"}
    assert schemas["ErrorDetail"]["properties"]["type"]["enum"] == [
        "invalid_request_error",
        "idempotency_error",
        "authentication_error",
        "not_found",
        "api_error",
        "psp_error",
    ]


def test_documented_statuses_of_each_operation(document: dict[str, Any]) -> None:
    statuses = {key: sorted(op["responses"]) for key, op in _operations(document).items()}
    post = ["202", "400", "403", "409", "413", "422", "429"]
    assert statuses == {
        ("POST", "/v1/payments"): post,
        ("GET", "/v1/payments/{payment_id}"): ["200", "400", "403", "404", "429"],
        # Safe to repeat, no body: no Idempotency-Key, no 413 or 422
        ("POST", "/v1/payment-orders/{payment_order_id}/fulfil"): ["200", "400", "403", "404", "409", "429"],
        ("POST", "/v1/payouts"): post,
        ("GET", "/v1/payouts/{payout_id}"): ["200", "400", "403", "404", "429"],
        ("POST", "/v1/webhooks/psp"): ["200", "400", "413", "429"],
        ("POST", "/v1/webhooks/payout-provider"): ["200", "400", "413", "429"],
        ("GET", "/v1/wallets/{seller_id}"): ["200", "400", "403", "429"],
        ("GET", "/v1/ledger/entries"): ["200", "400", "403", "429"],
        ("GET", "/v1/ledger/trial-balance"): ["200", "403", "429"],
        ("GET", "/v1/reconciliations"): ["200", "400", "403", "429"],
        ("GET", "/v1/reconciliations/{run_id}"): ["200", "400", "403", "404", "429"],
        ("POST", "/v1/refunds"): sorted([*post, "404"]),
        ("GET", "/v1/refunds/{refund_id}"): ["200", "400", "403", "404", "429"],
        ("GET", "/v1/disputes"): ["200", "400", "403", "429"],
        ("GET", "/v1/disputes/{dispute_id}"): ["200", "400", "403", "404", "429"],
        ("POST", "/v1/webhook-endpoints"): ["201", "400", "403", "409", "413", "422", "429"],
        ("GET", "/v1/webhook-endpoints"): ["200", "403", "429"],
        ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): ["200", "400", "403", "404", "429"],
        ("GET", "/v1/events"): ["200", "400", "403", "404", "429"],
        ("PUT", "/v1/sellers/{seller_id}/payout-account"): ["200", "400", "403", "409", "413", "429"],
        ("GET", "/v1/sellers/{seller_id}"): ["200", "400", "403", "404", "429"],
        ("GET", "/health"): ["200"],
    }
    operations = _operations(document)
    assert "duplicate_payment_order" in operations[("POST", "/v1/payments")]["responses"]["409"]["description"]
    payout_refusals = operations[("POST", "/v1/payouts")]["responses"]["422"]["description"]
    assert "insufficient_funds" in payout_refusals and "payout_account_missing" in payout_refusals
    refund_refusals = operations[("POST", "/v1/refunds")]["responses"]["422"]["description"]
    assert "refund_exceeds_charge" in refund_refusals and "order_not_refundable" in refund_refusals
    fulfil_refusals = operations[("POST", "/v1/payment-orders/{payment_order_id}/fulfil")]["responses"]["409"]
    assert "order_not_held" in fulfil_refusals["description"] and "order_not_charged" in fulfil_refusals["description"]


def test_security_is_the_api_key_except_on_the_webhook_and_health(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"] == {
        "apiKey": {
            "type": "apiKey",
            "in": "header",
            "name": "x-api-key",
            "description": document["components"]["securitySchemes"]["apiKey"]["description"],
        }
    }
    assert document["security"] == [{"apiKey": []}]
    for key, operation in _operations(document).items():
        assert operation.get("security") == ([] if key in PUBLIC else None), key


def test_required_headers_are_declared(document: dict[str, Any]) -> None:
    for (method, path), operation in _operations(document).items():
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        if path == "/v1/webhooks/psp":
            assert set(headers) == {"PSP-Signature"}
            assert headers["PSP-Signature"]["required"] is True
        elif path == "/v1/webhooks/payout-provider":  # its own signature header, never the PSP's
            assert set(headers) == {"Payouts-Signature"}
            assert headers["Payouts-Signature"]["required"] is True
        elif path.endswith("/fulfil"):  # acts on an existing order, safe to repeat: no key
            assert headers == {}, path
        elif method == "POST":
            assert set(headers) == {"Idempotency-Key"}, path
            key = headers["Idempotency-Key"]
            assert key["required"] is True
            assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
        else:
            assert headers == {}, path


def test_request_schemas_state_the_rules_the_api_enforces(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    payment, order, payout = schemas["PaymentRequest"], schemas["OrderRequest"], schemas["PayoutRequest"]
    for model in (payment, order, payout):
        assert model["additionalProperties"] is False
    for schema in (payment["properties"]["currency"], payout["properties"]["currency"]):
        assert schema["enum"] == sorted(CURRENCY_EXPONENTS)
    for model, fields in ((payment, ("checkout_id", "buyer_id", "payment_method")), (order, ("seller_id",))):
        for field in fields:
            assert model["properties"][field]["pattern"] == ID_PATTERN
    assert order["properties"]["payment_order_id"]["pattern"] == ID_PATTERN
    assert payout["properties"]["seller_id"]["pattern"] == ID_PATTERN
    for amount in (order["properties"]["amount"], payout["properties"]["amount"]):
        assert amount["type"] == "integer"
        assert (amount["exclusiveMinimum"], amount["maximum"]) == (0, LARGEST_AMOUNT_MINOR)
        # the per-currency maximum, in words: eight digits, twelve in the listed currencies, else 400
        assert f"{MAX_AMOUNT_MINOR:,}" in amount["description"] and "400" in amount["description"]
        assert f"{LARGEST_AMOUNT_MINOR:,} in {', '.join(sorted(TWELVE_DIGIT_CURRENCIES))}" in amount["description"]
    refusal = _operations(document)[("POST", "/v1/payments")]["responses"]["400"]["description"]
    assert "above its currency's maximum" in refusal
    orders = payment["properties"]["orders"]
    assert (orders["minItems"], orders["maxItems"]) == (1, 100)
    body = _operations(document)[("POST", "/v1/payments")]["requestBody"]
    assert "65536 bytes" in body["description"] and "card number" in body["description"]
    path_ids = [
        p["schema"]["pattern"]
        for op in _operations(document).values()
        for p in op.get("parameters", [])
        if p["in"] == "path"
    ]
    # payment, payout, seller (wallet, seller and payout account), run, endpoint, dispute, refund and order ids
    assert len(path_ids) == 10 and all(re.fullmatch(r"\^\[A-Za-z0-9_-\]\{1,(64|80)\}\$", p) for p in path_ids)
    entries = _operations(document)[("GET", "/v1/ledger/entries")]["parameters"]
    assert [(p["name"], p["style"], p["explode"]) for p in entries] == [("filter", "form", True)]
    assert entries[0]["schema"]["oneOf"] == [{"required": ["payment_order_id"]}, {"required": ["account"]}]


def test_links_lead_from_a_created_resource_to_its_read(document: dict[str, Any]) -> None:
    operations = _operations(document)
    payment_links = operations[("POST", "/v1/payments")]["responses"]["202"]["links"]
    payout_links = operations[("POST", "/v1/payouts")]["responses"]["202"]["links"]
    assert (
        payment_links["ReadPayment"]["operationId"] == operations[("GET", "/v1/payments/{payment_id}")]["operationId"]
    )
    assert payment_links["ReadPayment"]["parameters"] == {"payment_id": "$response.body#/payment_id"}
    assert payout_links["ReadPayout"]["operationId"] == operations[("GET", "/v1/payouts/{payout_id}")]["operationId"]
    assert payout_links["ReadPayout"]["parameters"] == {"payout_id": "$response.body#/payout_id"}
    operation_ids = {op["operationId"] for op in operations.values()}
    assert len(operation_ids) == len(operations)
    refund_links = operations[("POST", "/v1/refunds")]["responses"]["202"]["links"]
    assert refund_links["ReadRefund"]["parameters"] == {"refund_id": "$response.body#/refund_id"}
    for link in (*payment_links.values(), *payout_links.values(), *refund_links.values()):
        assert link["operationId"] in operation_ids


def test_docs_is_swagger_ui_from_assets_the_stack_serves(stack: LocalStack) -> None:
    http = urllib3.PoolManager(retries=False)
    page = http.request("GET", f"{stack.api_url}/docs")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.data.decode()
    assert "SwaggerUIBundle(" in html and 'url: "/openapi.json"' in html and "validatorUrl: null" in html
    # Nothing is fetched from anywhere but the stack itself.
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert referenced == ["/docs/swagger-ui.min.css", "/docs/swagger-ui-bundle.min.js"]
    assert "http://" not in html and "https://" not in html
    packaged = swagger_ui.__file__.rsplit("/", 1)[0]
    for path, content_type in (
        ("/docs/swagger-ui.min.css", "text/css; charset=utf-8"),
        ("/docs/swagger-ui-bundle.min.js", "application/javascript; charset=utf-8"),
    ):
        asset = http.request("GET", f"{stack.api_url}{path}")
        assert asset.status == 200, path
        assert asset.headers["Content-Type"] == content_type
        with open(f"{packaged}/{path.rsplit('/', 1)[1]}", "rb") as shipped:
            assert asset.data == shipped.read()


def test_a_method_a_path_does_not_have_is_405_with_allow(api: ApiClient) -> None:
    for method, path, allowed in (
        ("DELETE", "/v1/payments", "POST"),
        ("PUT", "/v1/payments/pay_1", "GET"),
        ("TRACE", "/v1/webhooks/psp", "POST"),
        ("POST", "/health", "GET"),
    ):
        result = api.request(method, path)
        assert result.status == 405, (method, path)
        assert result.headers["allow"] == allowed
        assert result.body["error"]["code"] == "method_not_allowed"
    assert api.get("/v1/nothing-here").body["error"]["code"] == "route_not_found"


def test_the_payout_account_schema_states_its_rules_and_shows_no_numbers(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    account = schemas["PayoutAccountRequest"]
    assert account["additionalProperties"] is False
    assert set(account["required"]) == {"country", "currency", "account_holder"}
    properties = account["properties"]
    assert properties["country"]["pattern"] == "^[A-Z]{2}$"
    assert properties["currency"]["enum"] == sorted(CURRENCY_EXPONENTS)
    assert properties["account_number"]["anyOf"][0]["pattern"] == "^[0-9]{4,17}$"
    assert properties["routing_number"]["anyOf"][0]["pattern"] == "^[0-9]{9}$"
    # what is shown of an account: never its numbers
    assert set(schemas["PayoutAccountView"]["properties"]) == {
        "version",
        "country",
        "currency",
        "account_holder",
        "last4",
        "status",
    }
    assert "destination_last4" in schemas["PayoutResponse"]["properties"]
