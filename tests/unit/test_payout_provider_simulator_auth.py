"""The payout provider simulator is mounted on the PSP simulator's server under /payouts/, behind its own
key: no key, another key or the PSP's key is 401 there and nothing happens; the provider's key opens no PSP
route; and each one's brownout leaves the other's routes alone."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from local_stack.payout_provider.simulator import DEFAULT_API_KEY, PayoutProviderSimulator, api_key_from_env
from local_stack.psp.simulator import PspSimulator, bearer
from local_stack.psp.test_accounts import IBAN
from tests.support.payout_provider import PROVIDER_KEY, PSP_KEY, ProviderOnLoopback, provider_on_loopback

PAYEE = {"name": "Seller GmbH", "country": "DE", "currency": "EUR", "iban": IBAN}
PAYMENT = {"payee_id": "seller1v1", "amount": 500, "currency": "EUR", "reference": "payout_1"}
# One request per provider route (a test below checks none is missing), and an unknown one.
REQUESTS = [
    ("PUT", "/payouts/v1/payees/seller1v1", PAYEE),
    ("POST", "/payouts/v1/payments", PAYMENT),
    ("GET", "/payouts/v1/payments?reference=payout_1", None),
    ("GET", "/payouts/v1/payments/pmt_abc", None),
    ("GET", "/payouts/v1/settlements?date=2026-01-01", None),
    ("POST", "/payouts/v1/_simulator/webhooks", {"drop": True}),
    ("POST", "/payouts/v1/_simulator/brownout", {"seconds": 0}),
    ("GET", "/payouts/v1/no_such_route", None),
]
UNAUTHORIZED = {
    None: "api_key_missing",
    "": "api_key_missing",
    f"Bearer {PSP_KEY}": "api_key_invalid",
    "Bearer pk_test_other": "api_key_invalid",
    f"Basic {PROVIDER_KEY}": "api_key_invalid",
    "Bearer ": "api_key_invalid",
}


@pytest.fixture
def stack() -> Iterator[ProviderOnLoopback]:
    with provider_on_loopback() as on_loopback:
        yield on_loopback


def test_the_requests_below_cover_every_provider_route() -> None:
    provider = PayoutProviderSimulator(api_key=PROVIDER_KEY)
    paths = [(method, path.partition("?")[0]) for method, path, _ in REQUESTS]
    for method, pattern, _ in provider.routes:
        assert any(m == method and pattern.match(p) for m, p in paths), pattern.pattern


def _nothing_happened(stack: ProviderOnLoopback) -> None:
    provider = stack.provider
    assert (provider.payees.all(), provider.payments.find(), provider.webhooks.sent) == ([], [], [])
    assert (provider.webhooks.faults.drop, stack.psp.charges.all(), stack.psp.refunds.find()) == (False, [], [])


@pytest.mark.parametrize(("authorization", "code"), UNAUTHORIZED.items())
def test_every_provider_route_answers_401_without_the_providers_key(
    stack: ProviderOnLoopback, authorization: str | None, code: str
) -> None:
    for method, path, body in REQUESTS:
        headers = {"Idempotency-Key": "payout_1"}
        if authorization is not None:
            headers["Authorization"] = authorization
        response = stack.http.request(
            method, f"{stack.base_url}{path}", body=json.dumps(body).encode() if body else None, headers=headers
        )
        assert (response.status, response.headers["Content-Type"]) == (401, "application/json"), path
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="payout-provider-simulator"'
        answer = json.loads(response.data)
        assert answer == {
            "error": {"type": "authentication_error", "code": code, "message": answer["error"]["message"]}
        }
    _nothing_happened(stack)


def test_the_providers_key_is_refused_on_the_psps_routes(stack: ProviderOnLoopback) -> None:
    charge = {"amount": 500, "currency": "USD", "payment_method": "tok_visa", "merchant_reference": "po_1"}
    charged = stack.call("POST", "/v1/charges", charge, idempotency_key="po_1")
    listed = stack.response("GET", "/v1/charges?merchant_reference=po_1", key=PROVIDER_KEY)
    assert (charged[0], charged[1]["error"]["code"]) == (401, "api_key_invalid")
    assert (listed.status, json.loads(listed.data)["error"]["code"]) == (401, "api_key_invalid")
    assert listed.headers["WWW-Authenticate"] == 'Bearer realm="psp-simulator"'
    _nothing_happened(stack)
    # while the PSP's own key still opens them
    assert stack.call("POST", "/v1/charges", charge, key=PSP_KEY, idempotency_key="po_1")[0] == 200


def test_the_providers_key_opens_its_routes_and_an_unknown_one_is_404(stack: ProviderOnLoopback) -> None:
    for method, path, body in REQUESTS[:-1]:
        assert stack.call(method, path, body, idempotency_key="payout_1")[0] in (200, 404), path
    assert stack.call("GET", "/payouts/v1/no_such_route") == (
        404,
        {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": "Unrecognized request URL (GET /payouts/v1/no_such_route).",
            }
        },
    )
    assert stack.call("DELETE", "/payouts/v1/payments")[1]["error"]["code"] == "resource_missing"


def test_the_key_comes_from_its_own_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYMENTS_PAYOUT_PROVIDER_API_KEY", raising=False)
    monkeypatch.delenv("PAYMENTS_PSP_API_KEY", raising=False)
    assert api_key_from_env() == DEFAULT_API_KEY == "pk_test_payouts"
    assert PspSimulator().payout_provider.api_key == "pk_test_payouts"
    monkeypatch.setenv("PAYMENTS_PAYOUT_PROVIDER_API_KEY", "pk_test_from_env")
    psp = PspSimulator()
    try:
        path = "/payouts/v1/payments?reference=payout_1"
        assert psp.payout_provider.api_key == "pk_test_from_env"
        assert psp.handle("GET", path, bearer("pk_test_payouts"), b"").status == 401
        assert psp.handle("GET", path, bearer("sk_test_local"), b"").status == 401
        assert psp.handle("GET", path, bearer("pk_test_from_env"), b"").status == 200
    finally:
        psp.webhooks.stop()
        psp.payout_provider.stop()


def test_the_psps_brownout_does_not_degrade_the_providers_routes(stack: ProviderOnLoopback) -> None:
    slept: list[float] = []
    stack.psp.brownout._sleep = slept.append
    brownout = {"latency_ms": 2000, "error_rate": 1, "seconds": 60}
    assert stack.call("POST", "/_sim/brownout", brownout, key=PSP_KEY)[0] == 200
    # Given a brownout that fails every PSP request after 2 s
    assert stack.call("GET", "/v1/charges?merchant_reference=po_1", key=PSP_KEY)[0] == 503
    assert slept == [2.0]
    # Then the provider's routes answer at once, and do what they do
    put = stack.call("PUT", "/payouts/v1/payees/seller1v1", PAYEE)
    paid = stack.call("POST", "/payouts/v1/payments", PAYMENT, idempotency_key="payout_1")
    listed = stack.call("GET", "/payouts/v1/payments?reference=payout_1")
    assert (put[0], paid[0], listed[0]) == (200, 200, 200)
    assert [p["id"] for p in listed[1]["data"]] == [paid[1]["id"]]
    assert slept == [2.0]
    assert (stack.psp.brownout.degraded, stack.psp.brownout.failed) == (1, 1)


def test_the_providers_own_brownout_fails_its_routes_before_anything_is_done(stack: ProviderOnLoopback) -> None:
    slept: list[float] = []
    stack.provider.brownout._sleep = slept.append
    brownout = {"latency_ms": 1500, "error_rate": 1, "seconds": 60}
    assert stack.call("POST", "/payouts/v1/_simulator/brownout", brownout)[0] == 200
    # Given a brownout that fails every provider request after 1.5 s: a payee and a payment are refused
    put = stack.call("PUT", "/payouts/v1/payees/seller1v1", PAYEE)
    paid = stack.call("POST", "/payouts/v1/payments", PAYMENT, idempotency_key="payout_1")
    assert (put[0], paid[0], slept) == (503, 503, [1.5, 1.5])
    assert (stack.provider.payees.all(), stack.provider.payments.find()) == ([], [])
    # while the PSP answers at once, and the provider's controls still answer
    charge = {"amount": 500, "currency": "USD", "payment_method": "tok_visa", "merchant_reference": "po_1"}
    assert stack.call("POST", "/v1/charges", charge, key=PSP_KEY, idempotency_key="po_1")[0] == 200
    assert stack.call("POST", "/payouts/v1/_simulator/brownout", {"seconds": 0})[0] == 200
    assert stack.call("PUT", "/payouts/v1/payees/seller1v1", PAYEE)[0] == 200
    assert (stack.provider.brownout.degraded, stack.provider.brownout.failed, stack.psp.brownout.degraded) == (2, 2, 0)
