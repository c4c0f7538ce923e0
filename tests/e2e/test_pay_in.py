"""Pay-in end to end through the local stack: checkout -> PSP -> wallet -> double-entry ledger."""

from __future__ import annotations

import time
from typing import Any

from local_stack.stack import LocalStack
from tests.support.api import ApiClient, checkout, unique


def wallet_available(api: ApiClient, seller_id: str, currency: str = "USD") -> int:
    balances = api.get(f"/v1/wallets/{seller_id}").body["balances"]
    return int(balances.get(currency, {}).get("available", 0))


def payable_balance(api: ApiClient, seller_id: str, currency: str = "USD") -> int:
    entries = api.get(f"/v1/ledger/entries?account=seller_payable:{seller_id}").body["entries"]
    return sum(
        e["amount"] if e["direction"] == "credit" else -e["amount"] for e in entries if e["currency"] == currency
    )


def charges_for(psp: ApiClient, payment_order_id: str) -> list[dict[str, Any]]:
    return list(psp.get(f"/v1/charges?merchant_reference={payment_order_id}").body["data"])


def test_multi_seller_checkout_succeeds_and_books_every_order_once(api: ApiClient, psp: ApiClient) -> None:
    # Given three sellers in one checkout
    sellers = [unique("seller") for _ in range(3)]
    body = checkout((sellers[0], 1099), (sellers[1], 2500), (sellers[2], 1))

    # When the checkout is paid
    accepted = api.post("/v1/payments", body)

    # Then it is accepted as PROCESSING with the summed amount
    assert accepted.status == 202, accepted.body
    assert accepted.body["status"] == "PROCESSING"
    assert accepted.body["amount"] == 3600
    payment = api.wait_for_payment(accepted.body["payment_id"])

    # And every order succeeded, was credited and booked
    assert payment["status"] == "SUCCEEDED"
    assert [o["status"] for o in payment["orders"]] == ["SUCCEEDED"] * 3
    assert all(o["wallet_updated"] and o["ledger_updated"] for o in payment["orders"])
    for seller, order in zip(sellers, body["orders"], strict=True):
        assert wallet_available(api, seller) == order["amount"]
        assert payable_balance(api, seller) == order["amount"]
        charges = charges_for(psp, order["payment_order_id"])
        assert len(charges) == 1
        assert charges[0]["amount"] == order["amount"]
        assert charges[0]["status"] == "succeeded"
    trial = api.get("/v1/ledger/trial-balance").body
    assert trial["balanced"] is True
    assert trial["currencies"]["USD"]["debits"] == trial["currencies"]["USD"]["credits"]


def test_a_declined_order_fails_alone_and_moves_no_money(api: ApiClient, psp: ApiClient) -> None:
    # Given a checkout where one seller's order is paid with a card that declines
    paid_seller, declined_seller = unique("seller"), unique("seller")
    body = checkout((paid_seller, 4000), (declined_seller, 1500, "tok_chargeDeclined"))

    # When it is paid
    accepted = api.post("/v1/payments", body)
    assert accepted.status == 202
    payment = api.wait_for_payment(accepted.body["payment_id"])

    # Then the payment is PARTIALLY_FAILED, the declined order FAILED with the PSP's code
    assert payment["status"] == "PARTIALLY_FAILED"
    paid, declined = payment["orders"]
    assert (paid["status"], paid["wallet_updated"], paid["ledger_updated"]) == ("SUCCEEDED", True, True)
    assert (declined["status"], declined["failure_code"]) == ("FAILED", "card_declined")
    assert (declined["wallet_updated"], declined["ledger_updated"]) == (False, False)
    # And no money moved for it: no wallet credit, no ledger entry, one (failed) charge attempt
    assert wallet_available(api, paid_seller) == 4000
    assert api.get(f"/v1/wallets/{declined_seller}").body == {"seller_id": declined_seller, "balances": {}}
    assert api.get(f"/v1/ledger/entries?payment_order_id={declined['payment_order_id']}").body == {"entries": []}
    assert [c["status"] for c in charges_for(psp, declined["payment_order_id"])] == ["failed"]


def test_an_all_declined_checkout_fails(api: ApiClient) -> None:
    body = checkout((unique("seller"), 300), payment_method="tok_insufficient_funds")
    payment = api.wait_for_payment(api.post("/v1/payments", body).body["payment_id"])
    assert payment["status"] == "FAILED"
    assert payment["orders"][0]["failure_code"] == "insufficient_funds"


def test_transient_psp_errors_and_lost_responses_end_in_exactly_one_charge(api: ApiClient, psp: ApiClient) -> None:
    # Given orders whose PSP calls fail twice with 5xx, or charge but lose the response
    flaky_seller, timeout_seller = unique("seller"), unique("seller")
    body = checkout((flaky_seller, 777, "tok_processing_error"), (timeout_seller, 888, "tok_timeout"))

    # When the checkout is paid
    payment = api.wait_for_payment(api.post("/v1/payments", body).body["payment_id"], timeout=90)

    # Then both succeed, each charged exactly once, and credited once
    assert payment["status"] == "SUCCEEDED"
    for order in body["orders"]:
        charges = charges_for(psp, order["payment_order_id"])
        assert [(c["amount"], c["status"]) for c in charges] == [(order["amount"], "succeeded")]
    assert wallet_available(api, flaky_seller) == 777
    assert wallet_available(api, timeout_seller) == 888


def test_pending_charge_leaves_the_order_pending(api: ApiClient) -> None:
    # tok_pending: the PSP has not decided; the order waits (a webhook settles it later)
    body = checkout((unique("seller"), 450, "tok_pending"))
    payment_id = api.post("/v1/payments", body).body["payment_id"]
    deadline = time.monotonic() + 30
    order = {}
    while time.monotonic() < deadline:
        order = api.get(f"/v1/payments/{payment_id}").body["orders"][0]
        if order["status"] != "NOT_STARTED":
            break
        time.sleep(0.2)
    assert order["status"] == "PENDING"
    assert api.get(f"/v1/payments/{payment_id}").body["status"] == "PROCESSING"


def test_replayed_key_returns_the_stored_response_and_a_different_body_is_refused(api: ApiClient) -> None:
    body = checkout((unique("seller"), 1000))
    first = api.post("/v1/payments", body, idempotency_key="replay-" + body["checkout_id"])
    again = api.post("/v1/payments", body, idempotency_key="replay-" + body["checkout_id"])
    assert first.status == again.status == 202
    assert again.body == first.body
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers

    changed = {**body, "buyer_id": unique("buyer")}
    refused = api.post("/v1/payments", changed, idempotency_key="replay-" + body["checkout_id"])
    assert refused.status == 422
    assert refused.body["error"]["type"] == "idempotency_error"
    assert refused.body["error"]["param"] == "Idempotency-Key"


def test_reusing_a_payment_order_id_under_a_new_key_is_a_conflict(api: ApiClient) -> None:
    body = checkout((unique("seller"), 1000))
    assert api.post("/v1/payments", body).status == 202
    reused = checkout((unique("seller"), 2000))
    reused["orders"][0]["payment_order_id"] = body["orders"][0]["payment_order_id"]
    conflict = api.post("/v1/payments", reused)
    assert conflict.status == 409
    assert conflict.body["error"]["code"] == "duplicate_payment_order"
    assert conflict.body["error"]["param"] == "orders[0].payment_order_id"


def test_unknown_payment_is_404(api: ApiClient) -> None:
    missing = api.get("/v1/payments/pay_doesnotexist")
    assert missing.status == 404
    assert missing.body["error"]["type"] == "not_found"


def test_openapi_document_describes_every_route(api: ApiClient, stack: LocalStack) -> None:
    document = api.get("/openapi.json").body
    assert document["openapi"].startswith("3.")
    assert stack.cloud is not None
    # every method the template's API Gateway routes to a function is documented
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert {(r.method, r.path) for r in stack.cloud.routes} <= documented
    assert "PaymentRequest" in document["components"]["schemas"]
