"""Bad input gets a clear 4xx and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_stack.stack import LocalStack
from tests.support.api import ApiClient, checkout, new_key
from tests.support.quiet import table_snapshot, wait_until_queues_drained


def _valid() -> dict[str, Any]:
    return checkout(("seller_valid", 1000), ("seller_other", 250))


def _with(**changes: Any) -> dict[str, Any]:
    return {**_valid(), **changes}


def _order(**changes: Any) -> dict[str, Any]:
    body = _valid()
    body["orders"][0] = {**body["orders"][0], **changes}
    return body


def _drop(field: str) -> dict[str, Any]:
    body = _valid()
    del body[field]
    return body


# (case, request body or raw bytes, expected status, expected error param)
MALFORMED: list[tuple[str, Any, int, str | None]] = [
    ("missing checkout_id", _drop("checkout_id"), 400, "checkout_id"),
    ("missing buyer_id", _drop("buyer_id"), 400, "buyer_id"),
    ("missing currency", _drop("currency"), 400, "currency"),
    ("missing payment_method", _drop("payment_method"), 400, "payment_method"),
    ("missing orders", _drop("orders"), 400, "orders"),
    ("no orders", _with(orders=[]), 400, "orders"),
    (
        "101 orders",
        _with(orders=[{"payment_order_id": f"po_many_{i}", "seller_id": "s", "amount": 1} for i in range(101)]),
        400,
        "orders",
    ),
    ("amount zero", _order(amount=0), 400, "orders[0].amount"),
    ("amount negative", _order(amount=-5), 400, "orders[0].amount"),
    ("amount above limit", _order(amount=100_000_000), 400, "orders[0].amount"),
    ("amount as float", _order(amount=10.99), 400, "orders[0].amount"),
    ("amount as string", _order(amount="1099"), 400, "orders[0].amount"),
    ("amount as bool", _order(amount=True), 400, "orders[0].amount"),
    (
        "amount missing",
        {**_valid(), "orders": [{"payment_order_id": "po_x1", "seller_id": "s"}]},
        400,
        "orders[0].amount",
    ),
    ("currency lower case", _with(currency="usd"), 400, "currency"),
    ("currency unknown", _with(currency="XYZ"), 400, "currency"),
    ("currency too long", _with(currency="USDD"), 400, "currency"),
    ("currency number", _with(currency=840), 400, "currency"),
    ("checkout_id with space", _with(checkout_id="co 1"), 400, "checkout_id"),
    ("checkout_id too long", _with(checkout_id="c" * 65), 400, "checkout_id"),
    ("buyer_id empty", _with(buyer_id=""), 400, "buyer_id"),
    ("seller_id with slash", _order(seller_id="a/b"), 400, "orders[0].seller_id"),
    ("payment_order_id unicode", _order(payment_order_id="po_ü"), 400, "orders[0].payment_order_id"),
    (
        "duplicate payment_order_id",
        {
            **_valid(),
            "orders": [
                {"payment_order_id": "po_dup", "seller_id": "s1", "amount": 1},
                {"payment_order_id": "po_dup", "seller_id": "s2", "amount": 2},
            ],
        },
        400,
        "orders",
    ),
    ("unknown top-level field", _with(card_number="nope"), 400, "card_number"),
    ("unknown order field", _order(tip=5), 400, "orders[0].tip"),
    ("orders not a list", _with(orders={"payment_order_id": "po_1"}), 400, "orders"),
    ("metadata not an object", _with(metadata=["a"]), 400, "metadata"),
    ("metadata value too long", _with(metadata={"note": "x" * 501}), 400, "metadata.note"),
    ("card number in metadata", _with(metadata={"note": "4242 4242 4242 4242"}), 400, "metadata.note"),
    ("card number as payment_method", _with(payment_method="4111111111111111"), 400, "payment_method"),
    ("card number as a number", _with(metadata={"n": 5555555555554444}), 400, "metadata.n"),
    ("card number in a key", _with(metadata={"378282246310005": "amex"}), 400, "metadata.378282246310005"),
    ("body not JSON", b"{not json", 400, "body"),
    ("body is a list", b"[1, 2]", 400, None),
    ("empty body", b"", 400, None),
    ("body over 64 KB", _with(metadata={f"k{i}": "v" * 480 for i in range(140)}), 400, "body"),
]


@pytest.fixture(scope="module")
def quiet_snapshot(stack: LocalStack, aws: Any) -> dict[str, Any]:
    wait_until_queues_drained(stack, aws)
    return table_snapshot(stack, aws)


@pytest.mark.parametrize(("case", "body", "status", "param"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_payment_request_is_rejected(
    api: ApiClient, quiet_snapshot: dict[str, Any], case: str, body: Any, status: int, param: str | None
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    result = api.request("POST", "/v1/payments", raw=raw, idempotency_key=new_key())
    assert result.status == status, (case, result.body)
    error = result.body["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param, (case, error)
    assert "4242" not in json.dumps(result.body) and "4111" not in json.dumps(result.body)


def test_post_without_idempotency_key_is_400(api: ApiClient, quiet_snapshot: dict[str, Any]) -> None:
    result = api.request("POST", "/v1/payments", body=_valid())
    assert result.status == 400
    assert result.body["error"]["param"] == "Idempotency-Key"


def test_idempotency_key_longer_than_255_is_400(api: ApiClient, quiet_snapshot: dict[str, Any]) -> None:
    result = api.request("POST", "/v1/payments", body=_valid(), idempotency_key="k" * 256)
    assert result.status == 400
    assert result.body["error"]["param"] == "Idempotency-Key"


def test_wrong_api_key_is_403(stack: LocalStack, quiet_snapshot: dict[str, Any]) -> None:
    result = ApiClient(stack.api_url, "wrong-key").post("/v1/payments", _valid())
    assert result.status == 403
    assert result.body["error"] == {
        "type": "authentication_error",
        "code": "invalid_api_key",
        "message": "Missing or invalid x-api-key.",
    }


def test_bad_query_and_path_parameters_are_400(api: ApiClient, quiet_snapshot: dict[str, Any]) -> None:
    assert api.get("/v1/ledger/entries").status == 400
    assert api.get("/v1/ledger/entries?account=a&payment_order_id=b").status == 400
    assert api.get("/v1/wallets/bad%20seller").status == 400


def test_rejected_requests_changed_no_table(stack: LocalStack, aws: Any, quiet_snapshot: dict[str, Any]) -> None:
    # Runs after the cases above (file order): every table is exactly as before them.
    assert len(MALFORMED) >= 30
    assert table_snapshot(stack, aws) == quiet_snapshot
