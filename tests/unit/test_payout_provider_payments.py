"""The payout provider's payments over HTTP: made once per idempotency key, checked against their payee,
refused at once for the refused test account (402 with the payment id), else settled a moment later - paid,
or failed with account_closed - each announced by a webhook signed with the provider's own secret under
`Payouts-Signature`; found by reference and by id."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from functions.psp_webhooks.signatures import SignatureInvalid, verify_signature
from local_stack.psp.test_accounts import CLOSED_IBAN, CLOSED_US_ACCOUNT, IBAN, REFUSED_IBAN, REFUSED_US_ACCOUNT
from tests.support.bank_accounts import ROUTING_NUMBER, US_ACCOUNT
from tests.support.payout_provider import (
    PROVIDER_SECRET,
    PSP_SECRET,
    Delivery,
    ProviderOnLoopback,
    fresh_provider,
    provider_on_loopback,
)

PAYMENT_ID = re.compile(r"pmt_[0-9a-f]{24}")


@pytest.fixture(scope="module")
def servers() -> Iterator[ProviderOnLoopback]:
    with provider_on_loopback() as on_loopback:
        yield on_loopback


@pytest.fixture
def stack(servers: ProviderOnLoopback) -> ProviderOnLoopback:
    return fresh_provider(servers, settle_delay=0.1)


def _us_payee(stack: ProviderOnLoopback, payee_id: str = "seller1v1", number: str = US_ACCOUNT) -> None:
    body = {
        "name": "Seller LLC",
        "country": "US",
        "currency": "USD",
        "account_number": number,
        "routing_number": ROUTING_NUMBER,
    }
    assert stack.call("PUT", f"/payouts/v1/payees/{payee_id}", body)[0] == 200


def _iban_payee(stack: ProviderOnLoopback, payee_id: str, iban: str) -> None:
    body = {"name": "Seller GmbH", "country": "DE", "currency": "EUR", "iban": iban}
    assert stack.call("PUT", f"/payouts/v1/payees/{payee_id}", body)[0] == 200


def _payment(
    payee_id: str = "seller1v1", amount: Any = 3_000, currency: str = "USD", reference: str = "payout_1"
) -> dict[str, Any]:
    return {"payee_id": payee_id, "amount": amount, "currency": currency, "reference": reference}


def _pay(stack: ProviderOnLoopback, body: Any, key: str | None = "payout_1") -> tuple[int, Any]:
    return stack.call("POST", "/payouts/v1/payments", body, idempotency_key=key)


def _error(code: str, answer: dict[str, Any], **extra: str) -> dict[str, Any]:
    message = answer["error"]["message"]
    return {"error": {"type": "invalid_request_error", "code": code, "message": message, **extra}}


def test_a_payment_is_submitted_and_the_same_key_and_body_answer_the_same(stack: ProviderOnLoopback) -> None:
    _us_payee(stack)
    before = int(time.time())
    status, payment = _pay(stack, _payment())
    again = _pay(stack, _payment())
    assert status == 200 and PAYMENT_ID.fullmatch(payment["id"])
    assert before <= payment["created"] <= int(time.time())
    assert payment == {
        "object": "payment",
        "id": payment["id"],
        "payee_id": "seller1v1",
        "amount": 3_000,
        "currency": "USD",
        "reference": "payout_1",
        "status": "submitted",
        "failure_code": None,
        "created": payment["created"],
    }
    assert again == (200, payment)
    assert [p.id for p in stack.provider.payments.find()] == [payment["id"]]


@pytest.mark.parametrize(
    "other", [_payment(amount=3_001), _payment(reference="payout_2"), _payment(payee_id="seller2v1")]
)
def test_the_same_key_with_another_body_is_refused(stack: ProviderOnLoopback, other: dict[str, Any]) -> None:
    _us_payee(stack)
    _us_payee(stack, "seller2v1")
    first = _pay(stack, _payment())
    status, answer = _pay(stack, other)
    assert (status, answer) == (400, _error("idempotency_key_in_use", answer))
    assert [p.id for p in stack.provider.payments.find()] == [first[1]["id"]]


def test_a_payment_needs_an_idempotency_key(stack: ProviderOnLoopback) -> None:
    _us_payee(stack)
    status, answer = _pay(stack, _payment(), key=None)
    assert (status, answer) == (400, _error("idempotency_key_required", answer))
    assert stack.provider.payments.find() == []


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (_payment(payee_id="seller9v1"), 404, "payee_not_found", "payee_id"),
        (_payment(currency="EUR"), 400, "currency_mismatch", "currency"),
        (_payment(amount=0), 400, "parameter_invalid", "amount"),
        (_payment(amount=-5), 400, "parameter_invalid", "amount"),
        (_payment(amount="3000"), 400, "parameter_invalid", "amount"),
        (_payment(amount=30.5), 400, "parameter_invalid", "amount"),
        (_payment(amount=True), 400, "parameter_invalid", "amount"),
        ({k: v for k, v in _payment().items() if k != "amount"}, 400, "parameter_invalid", "amount"),
        ({k: v for k, v in _payment().items() if k != "reference"}, 400, "parameter_missing", "reference"),
        ({k: v for k, v in _payment().items() if k != "currency"}, 400, "parameter_missing", "currency"),
        ({k: v for k, v in _payment().items() if k != "payee_id"}, 400, "parameter_missing", "payee_id"),
        (_payment(reference=""), 400, "parameter_missing", "reference"),
        ({**_payment(), "destination": "x"}, 400, "parameter_invalid", "destination"),
    ],
)
def test_a_payment_that_cannot_be_made_is_refused_and_nothing_is_made(
    stack: ProviderOnLoopback, body: dict[str, Any], status: int, code: str, param: str
) -> None:
    _us_payee(stack)
    refused, answer = _pay(stack, body)
    assert (refused, answer) == (status, _error(code, answer, param=param))
    assert (stack.provider.payments.find(), stack.provider.webhooks.sent) == ([], [])
    # the key was not used up: the right body with it is made
    assert _pay(stack, _payment())[0] == 200


@pytest.mark.parametrize("raw", [b"[]", b"{broken"])
def test_a_body_that_is_not_a_json_object_is_400(stack: ProviderOnLoopback, raw: bytes) -> None:
    status, answer = stack.call("POST", "/payouts/v1/payments", raw=raw, idempotency_key="payout_1")
    assert (status, answer) == (400, _error("body_invalid", answer))


@pytest.mark.parametrize(("make_payee", "currency"), [("us", "USD"), ("iban", "EUR")])
def test_a_refused_account_is_402_with_the_payment_id_and_the_payment_failed(
    stack: ProviderOnLoopback, make_payee: str, currency: str
) -> None:
    if make_payee == "us":
        _us_payee(stack, number=REFUSED_US_ACCOUNT)
    else:
        _iban_payee(stack, "seller1v1", REFUSED_IBAN)
    status, answer = _pay(stack, _payment(currency=currency))
    payment_id = answer["error"].get("payment", "")
    assert PAYMENT_ID.fullmatch(payment_id)
    assert (status, answer) == (
        402,
        {
            "error": {
                "type": "payment_error",
                "code": "invalid_account",
                "message": answer["error"]["message"],
                "payment": payment_id,
            }
        },
    )
    assert _pay(stack, _payment(currency=currency)) == (status, answer)
    found = stack.call("GET", f"/payouts/v1/payments/{payment_id}")
    assert (found[0], found[1]["status"], found[1]["failure_code"]) == (200, "failed", "invalid_account")
    assert [p.id for p in stack.provider.payments.find(reference="payout_1")] == [payment_id]
    time.sleep(0.3)  # past the settle delay: nothing more happens to it
    assert stack.provider.payments.get(payment_id) == stack.provider.payments.find()[0]
    assert (stack.provider.payments.find()[0].status, stack.provider.webhooks.sent) == ("failed", [])


def _in_order(deliveries: list[Delivery]) -> list[Delivery]:
    """Deliveries by their event's step (each is posted by its own thread, so two may cross on the way)."""
    return sorted(deliveries, key=lambda d: d.event["type"] != "payment.submitted")


def _verified(delivery_header: str | None, body: bytes, secret: str) -> bool:
    try:
        verify_signature(delivery_header, body, secrets=[secret], now=time.time())
    except SignatureInvalid:
        return False
    return True


def test_a_payment_is_paid_and_each_step_is_a_webhook_signed_with_the_providers_secret(
    stack: ProviderOnLoopback,
) -> None:
    _us_payee(stack)
    _, submitted = _pay(stack, _payment())
    paid = stack.settled(submitted["id"])
    deliveries = _in_order(stack.receiver.wait_for(2))
    time.sleep(0.2)  # no other delivery follows
    assert len(stack.receiver.received()) == 2
    assert [(d.path, d.event["type"]) for d in deliveries] == [
        ("/provider", "payment.submitted"),
        ("/provider", "payment.paid"),
    ]
    assert (paid.status, paid.failure_code) == ("paid", None)
    for delivery, data in zip(deliveries, [submitted, {**submitted, "status": "paid"}], strict=True):
        event = delivery.event
        assert re.fullmatch(r"evt_[0-9a-f]{24}", event["id"])
        assert event == {"id": event["id"], "type": event["type"], "created": event["created"], "data": data}
        assert "psp-signature" not in delivery.headers
        header = delivery.headers["payouts-signature"]
        assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
        assert _verified(header, delivery.body, PROVIDER_SECRET)
        assert not _verified(header, delivery.body, PSP_SECRET)
        assert not _verified(header, delivery.body + b" ", PROVIDER_SECRET)
    got = stack.call("GET", f"/payouts/v1/payments/{submitted['id']}")
    assert got == (200, {**submitted, "status": "paid"})


@pytest.mark.parametrize(("make_payee", "currency"), [("us", "USD"), ("iban", "EUR")])
def test_a_closed_account_fails_later_with_account_closed_by_webhook(
    stack: ProviderOnLoopback, make_payee: str, currency: str
) -> None:
    if make_payee == "us":
        _us_payee(stack, number=CLOSED_US_ACCOUNT)
    else:
        _iban_payee(stack, "seller1v1", CLOSED_IBAN)
    status, submitted = _pay(stack, _payment(currency=currency))
    assert (status, submitted["status"]) == (200, "submitted")
    failed = stack.settled(submitted["id"])
    events = [d.event for d in _in_order(stack.receiver.wait_for(2))]
    final = {**submitted, "status": "failed", "failure_code": "account_closed"}
    assert [(e["type"], e["data"]) for e in events] == [("payment.submitted", submitted), ("payment.failed", final)]
    assert (failed.status, failed.failure_code) == ("failed", "account_closed")
    assert stack.call("GET", f"/payouts/v1/payments/{submitted['id']}") == (200, final)


def test_payments_are_listed_by_reference_and_found_by_id(stack: ProviderOnLoopback) -> None:
    fresh_provider(stack, settle_delay=60)  # they stay submitted while the test looks
    _us_payee(stack)
    _iban_payee(stack, "seller2v1", IBAN)
    first = _pay(stack, _payment(reference="payout_1"), key="payout_1")[1]
    second = _pay(stack, _payment(payee_id="seller2v1", currency="EUR", reference="payout_2"), key="payout_2")[1]
    assert stack.call("GET", "/payouts/v1/payments?reference=payout_1") == (200, {"object": "list", "data": [first]})
    assert stack.call("GET", "/payouts/v1/payments?reference=payout_2") == (200, {"object": "list", "data": [second]})
    assert stack.call("GET", "/payouts/v1/payments?reference=payout_3") == (200, {"object": "list", "data": []})
    everything = stack.call("GET", "/payouts/v1/payments")[1]["data"]
    assert sorted(p["id"] for p in everything) == sorted([first["id"], second["id"]])
    assert stack.call("GET", f"/payouts/v1/payments/{second['id']}") == (200, second)
    status, missing = stack.call("GET", "/payouts/v1/payments/pmt_000000000000000000000000")
    assert (status, missing) == (404, _error("resource_missing", missing))


def test_webhook_faults_are_set_on_the_providers_sender_only(stack: ProviderOnLoopback) -> None:
    status, faults = stack.call("POST", "/payouts/v1/_simulator/webhooks", {"drop": True})
    assert (status, faults) == (200, {"drop": True, "duplicate": False, "reorder": False})
    assert stack.psp.webhooks.faults.drop is False
    _us_payee(stack)
    _, submitted = _pay(stack, _payment())
    stack.settled(submitted["id"])
    time.sleep(0.3)
    # the events happened, but none was delivered
    assert [e["type"] for e in stack.provider.webhooks.sent] == ["payment.submitted", "payment.paid"]
    assert stack.receiver.received() == []
    status, answer = stack.call("POST", "/payouts/v1/_simulator/webhooks", raw=b"[]")
    assert (status, answer) == (400, _error("body_invalid", answer))
    assert stack.call("POST", "/payouts/v1/_simulator/webhooks", {"drop": False, "duplicate": True}) == (
        200,
        {"drop": False, "duplicate": True, "reorder": False},
    )


def test_the_webhook_body_is_the_json_that_was_signed(stack: ProviderOnLoopback) -> None:
    _us_payee(stack)
    _pay(stack, _payment())
    delivery = stack.receiver.wait_for(1)[0]
    assert json.loads(delivery.body) == stack.provider.webhooks.sent[0]
    assert delivery.headers["content-type"] == "application/json"
