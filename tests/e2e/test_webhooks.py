"""PSP webhooks end to end: signature checks (forged, stale, rotated), dedupe by event id, pending
charges settled by webhook, and duplicated / reordered deliveries that never move a decided state."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from functions.psp_webhooks.settings import PspWebhookSettings
from local_stack.stack import LocalStack
from tests.e2e.test_payouts import assert_books_agree, fund, wait_for_payout
from tests.support.api import ApiClient, checkout, unique
from tests.support.bank_accounts import us_account_body
from tests.support.psp_signatures import signature_header

SECRET_CACHE_SECONDS = PspWebhookSettings.model_fields["secret_cache_seconds"].default


@pytest.fixture
def faults(psp: ApiClient) -> Iterator[Any]:
    def set_faults(**flags: bool) -> None:
        assert psp.request("POST", "/v1/_simulator/webhooks", body=flags).status == 200

    yield set_faults
    set_faults(drop=False, duplicate=False, reorder=False)


def signing_secret(stack: LocalStack) -> str:
    assert stack.psp_simulator is not None and stack.psp_simulator.webhooks.secret is not None
    return stack.psp_simulator.webhooks.secret


def post_event(api: ApiClient, body: bytes, header: str | None) -> Any:
    headers = {"PSP-Signature": header} if header is not None else {}
    return api.request("POST", "/v1/webhooks/psp", raw=body, headers=headers)


def wait_for_order(api: ApiClient, payment_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        payment = api.get(f"/v1/payments/{payment_id}").body
        if payment["orders"][0]["status"] == status or time.monotonic() > deadline:
            return dict(payment)
        time.sleep(0.2)


def test_pending_charge_is_settled_by_the_signed_webhook(api: ApiClient, psp: ApiClient) -> None:
    # Given an order the PSP leaves pending
    seller = unique("seller")
    payment_id = api.post("/v1/payments", checkout((seller, 450, "tok_pending"))).body["payment_id"]
    assert wait_for_order(api, payment_id, "PENDING")["orders"][0]["status"] == "PENDING"

    # When the PSP settles it a few seconds later and says so by webhook
    payment = api.wait_for_payment(payment_id, timeout=60)

    # Then the order SUCCEEDED, credited and booked once, with one charge at the PSP
    assert payment["status"] == "SUCCEEDED"
    order = payment["orders"][0]
    assert (order["status"], order["wallet_updated"], order["ledger_updated"]) == ("SUCCEEDED", True, True)
    charges = psp.get(f"/v1/charges?merchant_reference={order['payment_order_id']}").body["data"]
    assert [(c["status"], c["id"]) for c in charges] == [("succeeded", order["psp_reference"])]
    assert_books_agree(api, seller, available=450)


def test_forged_or_stale_signatures_are_refused_and_change_nothing(stack: LocalStack, api: ApiClient) -> None:
    seller = unique("seller")
    payment_id = api.post("/v1/payments", checkout((seller, 321, "tok_pending"))).body["payment_id"]
    order = wait_for_order(api, payment_id, "PENDING")["orders"][0]
    event = {
        "id": unique("evt"),
        "type": "charge.failed",
        "created": int(time.time()),
        "data": {"object": {"id": "ch_forged", "merchant_reference": order["payment_order_id"], "status": "failed"}},
    }
    body = json.dumps(event).encode()
    now = int(time.time())
    secret = signing_secret(stack)

    forged = post_event(api, body, signature_header("whsec_not_the_secret", now, body))
    # Just past the 300 s tolerance, timed at the moment of sending (the requests before take time, and a
    # whole-second timestamp can be up to a second behind).
    stale = post_event(api, body, signature_header(secret, int(time.time()) - 305, body))
    future = post_event(api, body, signature_header(secret, int(time.time()) + 305, body))
    tampered = post_event(api, body.replace(b"charge.failed", b"charge.succeeded"), signature_header(secret, now, body))
    missing = post_event(api, body, None)
    malformed = post_event(api, body, "v1=abc")

    for response in (forged, stale, future, tampered, missing, malformed):
        assert response.status == 400, response.body
        assert response.body["error"]["type"] == "invalid_request_error"
        assert response.body["error"]["code"] == "signature_invalid"
    # And the forged "failed" changed nothing: the real settlement still succeeds the order
    payment = api.wait_for_payment(payment_id, timeout=60)
    assert payment["status"] == "SUCCEEDED"
    assert payment["orders"][0]["psp_reference"] != "ch_forged"
    assert_books_agree(api, seller, available=321)


def test_a7_a_non_ascii_signature_or_a_body_that_is_not_utf8_is_refused_with_400(api: ApiClient) -> None:
    # Given a pending order, and forged "failed" events for it
    seller = unique("seller")
    payment_id = api.post("/v1/payments", checkout((seller, 654, "tok_pending"))).body["payment_id"]
    order = wait_for_order(api, payment_id, "PENDING")["orders"][0]
    reference = order["payment_order_id"].encode()
    body = b'{"id": "evt_\xc3\xa9", "type": "charge.failed", "data": {"object": {"merchant_reference": "%s"}}}'
    now = int(time.time())

    # When one carries a non-ASCII signature, and one a body that is not UTF-8
    non_ascii = post_event(api, body % reference, f"t={now},v1={'é' * 64}")
    not_utf8 = post_event(api, (body % reference).replace(b"\xc3\xa9", b"\xff\xfe"), f"t={now},v1={'0' * 64}")

    # Then both are refused in the contract's error shape, never with a 5xx
    for response in (non_ascii, not_utf8):
        assert response.status == 400, response.body
        assert (response.body["error"]["type"], response.body["error"]["code"]) == (
            "invalid_request_error",
            "signature_invalid",
        )
    # And nothing changed: the real settlement still succeeds the order
    assert api.wait_for_payment(payment_id, timeout=60)["status"] == "SUCCEEDED"
    assert_books_agree(api, seller, available=654)


def test_duplicate_event_id_is_acknowledged_without_effect(stack: LocalStack, api: ApiClient) -> None:
    # Given a settled order and a genuine, signed (late, contradicting) event for it
    seller = unique("seller")
    payment = api.wait_for_payment(api.post("/v1/payments", checkout((seller, 600))).body["payment_id"])
    order = payment["orders"][0]
    event = {
        "id": unique("evt"),
        "type": "charge.failed",
        "created": int(time.time()),
        "data": {"object": {"id": order["psp_reference"], "merchant_reference": order["payment_order_id"]}},
    }
    body = json.dumps(event).encode()
    header = signature_header(signing_secret(stack), int(time.time()), body)

    # When it is delivered twice
    first = post_event(api, body, header)
    second = post_event(api, body, header)

    # Then both are acknowledged, the second as a duplicate, and the SUCCEEDED order never regresses
    assert (first.status, first.body) == (200, {"received": True, "duplicate": False})
    assert (second.status, second.body) == (200, {"received": True, "duplicate": True})
    assert api.get(f"/v1/payments/{payment['payment_id']}").body["orders"][0]["status"] == "SUCCEEDED"
    assert_books_agree(api, seller, available=600)


def test_rotated_secret_verifies_with_the_old_and_the_new_value(stack: LocalStack, api: ApiClient, aws: Any) -> None:
    # Given the signing secret rotated: old and new values both valid during the overlap
    assert stack.cloud is not None
    arn = next(r.ref for r in stack.cloud.physical.values() if "PspWebhooksSigningSecret" in r.logical_id)
    old = signing_secret(stack)
    aws("secretsmanager").put_secret_value(
        SecretId=arn, SecretString=json.dumps({"current": "whsec_rotated_new", "previous": old})
    )
    try:
        # Then both verify: the new value once the function's cache period has passed (a signature that
        # matches nothing does not make it read the secret again), the old value throughout
        deadline = time.monotonic() + SECRET_CACHE_SECONDS + 10
        for secret in ("whsec_rotated_new", old):
            while True:
                event = {"id": unique("evt"), "type": "charge.pending", "created": int(time.time()), "data": {}}
                body = json.dumps(event).encode()
                response = post_event(api, body, signature_header(secret, int(time.time()), body))
                if response.status != 400 or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert (response.status, response.body) == (200, {"received": True, "duplicate": False}), secret
    finally:
        aws("secretsmanager").put_secret_value(SecretId=arn, SecretString=old)


@pytest.fixture
def provider_faults(provider: ApiClient) -> Iterator[Any]:
    def set_faults(**flags: bool) -> None:
        assert provider.request("POST", "/payouts/v1/_simulator/webhooks", body=flags).status == 200

    yield set_faults
    set_faults(drop=False, duplicate=False, reorder=False)


def test_duplicated_and_reordered_payout_webhooks_pay_once(
    stack: LocalStack, api: ApiClient, provider_faults: Any
) -> None:
    # Given the payout provider delivers every webhook twice and the submitted notice after the final one
    provider_faults(duplicate=True, reorder=True)
    seller = unique("seller")
    api.onboard(seller, us_account_body(seller))
    fund(api, seller, 4000)

    payout_id = api.post("/v1/payouts", {"seller_id": seller, "amount": 1500, "currency": "USD"}).body["payout_id"]
    payout = wait_for_payout(api, payout_id)

    # Then it is PAID once; the late submitted notice did not move it back
    assert payout["status"] == "PAID"
    time.sleep(3)  # the held-back payment.submitted copies arrive now
    assert api.get(f"/v1/payouts/{payout_id}").body["status"] == "PAID"
    assert stack.psp_simulator is not None
    sent = stack.psp_simulator.payout_provider.webhooks.sent
    events = [e for e in sent if e["data"].get("reference") == payout_id]
    assert sorted(e["type"] for e in events) == ["payment.paid", "payment.submitted"]
    assert_books_agree(api, seller, available=2500, reserved=0)


def test_duplicated_pending_charge_webhooks_credit_once(api: ApiClient, faults: Any) -> None:
    faults(duplicate=True)
    seller = unique("seller")

    payment = api.wait_for_payment(
        api.post("/v1/payments", checkout((seller, 999, "tok_pending"))).body["payment_id"], timeout=60
    )

    assert payment["status"] == "SUCCEEDED"
    time.sleep(1)
    assert_books_agree(api, seller, available=999)
