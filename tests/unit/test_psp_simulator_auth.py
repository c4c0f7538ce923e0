"""The PSP simulator refuses every route without the merchant's key, as a real PSP does: no
`Authorization: Bearer <key>`, or another key, is 401 with a JSON error, and nothing happens."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import urllib3

from local_stack.psp.simulator import DEFAULT_API_KEY, PspSimulator, api_key_from_env, bearer, psp_server
from tests.support.ports import free_port

KEY = "sk_test_unit"
# One request per route the simulator serves (a test below checks none is missing), and an unknown one.
REQUESTS = [
    ("POST", "/v1/charges"),
    ("GET", "/v1/charges?merchant_reference=po_1"),
    ("GET", "/v1/charges/ch_abc"),
    ("POST", "/v1/refunds"),
    ("GET", "/v1/refunds?charge=ch_abc"),
    ("POST", "/_sim/refunds/re_abc/fail"),
    ("GET", "/health"),
    ("GET", "/v1/settlements?date=2026-01-01"),
    ("GET", "/v1/charges/by_idempotency_key/po_1"),
    ("POST", "/v1/_simulator/webhooks"),
    ("GET", "/v1/events"),
    ("POST", "/_sim/brownout"),
    ("POST", "/v1/disputes/dp_abc/close"),
    ("GET", "/v1/disputes/dp_abc"),
    ("GET", "/v1/disputes?merchant_reference=po_1"),
    ("GET", "/v1/no_such_route"),
]
CHARGE = {"amount": 500, "currency": "USD", "payment_method": "tok_visa", "merchant_reference": "po_1"}


@pytest.fixture
def simulator() -> Iterator[PspSimulator]:
    sim = PspSimulator(api_key=KEY)
    try:
        yield sim
    finally:
        sim.webhooks.stop()


def test_the_requests_below_cover_every_route(simulator: PspSimulator) -> None:
    paths = [(method, path.partition("?")[0]) for method, path in REQUESTS]
    for method, pattern, _ in simulator.routes:
        assert any(m == method and pattern.match(p) for m, p in paths), pattern.pattern


@pytest.mark.parametrize(("method", "path"), REQUESTS)
@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "api_key_missing"),
        ("", "api_key_missing"),
        ("Bearer sk_test_other", "api_key_invalid"),
        (f"Basic {KEY}", "api_key_invalid"),
        ("Bearer ", "api_key_invalid"),
    ],
)
def test_every_route_answers_401_without_the_key(
    simulator: PspSimulator, method: str, path: str, authorization: str | None, code: str
) -> None:
    headers = {"Idempotency-Key": "po_1"} if authorization is None else {"Authorization": authorization}
    reply = simulator.handle(method, path, headers, json.dumps(CHARGE).encode())
    assert reply.status == 401
    assert reply.body == {
        "error": {"type": "authentication_error", "code": code, "message": reply.body["error"]["message"]}
    }
    # And nothing happened
    assert (simulator.charges.all(), simulator.refunds.find(), simulator.webhooks.sent) == ([], [], [])


def test_the_key_opens_every_route(simulator: PspSimulator) -> None:
    headers = {**bearer(KEY), "Idempotency-Key": "po_1"}
    charged = simulator.handle("POST", "/v1/charges", headers, json.dumps(CHARGE).encode())
    assert (charged.status, charged.body["status"]) == (200, "succeeded")
    # (header names are case-insensitive, as in HTTP)
    listed = simulator.handle("GET", "/v1/charges?merchant_reference=po_1", {"authorization": f"Bearer {KEY}"}, b"")
    assert [c["id"] for c in listed.body["data"]] == [charged.body["id"]]
    for method, path in REQUESTS:
        assert simulator.handle(method, path, bearer(KEY), b"{}").status != 401, path


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYMENTS_PSP_API_KEY", raising=False)
    assert api_key_from_env() == DEFAULT_API_KEY == "sk_test_local"
    monkeypatch.setenv("PAYMENTS_PSP_API_KEY", "sk_test_from_env")
    sim = PspSimulator()
    try:
        assert sim.api_key == "sk_test_from_env"
        assert sim.handle("GET", "/health", bearer("sk_test_local"), b"").status == 401
        assert sim.handle("GET", "/health", bearer("sk_test_from_env"), b"").status == 200
    finally:
        sim.webhooks.stop()


def test_over_http_a_call_without_the_key_or_with_another_is_401_json(simulator: PspSimulator) -> None:
    port = free_port()
    server = psp_server(simulator, host="127.0.0.1", port=port)
    server.start()
    http = urllib3.PoolManager(retries=False, timeout=5)
    try:
        url = f"http://127.0.0.1:{port}/v1/charges"
        body = json.dumps(CHARGE).encode()
        anonymous = http.request("POST", url, body=body, headers={"Idempotency-Key": "po_1"})
        wrong = http.request("POST", url, body=body, headers={"Idempotency-Key": "po_1", **bearer("sk_test_nope")})
        right = http.request("POST", url, body=body, headers={"Idempotency-Key": "po_1", **bearer(KEY)})
    finally:
        server.stop()
    assert (anonymous.status, anonymous.headers["Content-Type"]) == (401, "application/json")
    assert json.loads(anonymous.data)["error"]["code"] == "api_key_missing"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert (wrong.status, json.loads(wrong.data)["error"]["code"]) == (401, "api_key_invalid")
    assert (right.status, json.loads(right.data)["status"]) == (200, "succeeded")
    assert len(simulator.charges.all()) == 1
