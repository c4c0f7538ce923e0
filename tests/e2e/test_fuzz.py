"""`payments fuzz` against the shared local stack: a small seeded run with exact outcomes (no 5xx, every
answer the one its request expected, and the requests that must change nothing changed nothing); the
same seed generating the same requests; and the inputs the fuzzer found giving 5xx, each answered 4xx/2xx."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from local_stack.commands.fuzz import fuzz, target_of_stack
from local_stack.fuzzing.generator import RequestGenerator
from local_stack.fuzzing.runner import FuzzReport
from local_stack.stack import LocalStack
from tests.support.api import ApiClient, checkout, unique
from tests.support.psp_signatures import signature_header

REQUESTS = 300
SEED = 7
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def report(stack: LocalStack) -> FuzzReport:
    return fuzz(target_of_stack(stack), requests=REQUESTS, seed=SEED, chunk=100)


def test_a_seeded_fuzz_run_finds_no_5xx_and_rejected_requests_write_nothing(report: FuzzReport) -> None:
    assert report.problems() == []
    assert report.ok
    assert len(report.outcomes) == REQUESTS
    assert [o.request.index for o in report.outcomes] == list(range(REQUESTS))
    assert report.server_errors == []
    assert report.write_violations == []
    assert report.unexpected == []
    # Every 4xx was answered to a request that must change nothing, and none did.
    assert report.rejected > REQUESTS // 2
    assert report.verified_no_write == report.rejected
    assert report.rejected + report.accepted == REQUESTS
    assert report.line().startswith(f"fuzz: {REQUESTS} requests, 0 5xx, {report.rejected} rejected (4xx), ")


def test_the_run_reaches_every_operation_of_the_document(report: FuzzReport, api: ApiClient) -> None:
    document = api.get("/openapi.json").body
    operations = {f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item}
    assert operations <= {o.request.operation for o in report.outcomes}
    assert {"unknown path", "wrong method"} <= {o.request.operation for o in report.outcomes}


def test_the_same_seed_sends_the_same_requests() -> None:
    first = [r.fingerprint() for r in RequestGenerator(SEED).generate(REQUESTS)]
    again = [r.fingerprint() for r in RequestGenerator(SEED).generate(REQUESTS)]
    other = [r.fingerprint() for r in RequestGenerator(SEED + 1).generate(REQUESTS)]
    assert first == again
    assert len(first) == REQUESTS
    # Another seed: other requests (only a few fixed ones, like GET /health, coincide).
    assert sum(a != b for a, b in zip(first, other, strict=True)) > REQUESTS * 0.9


# ---- what the fuzzer found: each gave a 5xx (or a 202) before its fix ----


def test_a_json_list_around_a_valid_payment_is_refused_and_creates_nothing(api: ApiClient) -> None:
    body = checkout((unique("fuzz_seller"), 100))
    refused = api.request("POST", "/v1/payments", raw=json.dumps([body]).encode(), idempotency_key=uuid.uuid4().hex)
    assert refused.status == 400
    assert refused.body["error"]["code"] == "body_not_object"
    # The same order id is still free: nothing was stored under it.
    assert api.post("/v1/payments", body, idempotency_key=uuid.uuid4().hex).status == 202


def test_a_payout_body_that_is_not_an_object_is_refused(api: ApiClient) -> None:
    raw = json.dumps([{"seller_id": "s", "amount": 1, "currency": "USD"}]).encode()
    refused = api.request("POST", "/v1/payouts", raw=raw, idempotency_key=uuid.uuid4().hex)
    assert (refused.status, refused.body["error"]["code"]) == (400, "body_not_object")


@pytest.mark.parametrize("depth", [5000, 10000])
def test_json_nested_past_the_parser_limit_is_refused(api: ApiClient, depth: int) -> None:
    raw = b'{"metadata": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    refused = api.request("POST", "/v1/payments", raw=raw, idempotency_key=uuid.uuid4().hex)
    assert (refused.status, refused.body["error"]["code"]) == (400, "body_not_json")


@pytest.mark.parametrize(
    ("event_type", "event_object"),
    [
        ("payout.paid", {"merchant_reference": "y" * 3000, "id": "tr_1"}),
        ("charge.succeeded", {"merchant_reference": "y" * 3000, "id": "ch_1"}),
        ("payout.failed", {"merchant_reference": f"payout_{uuid.uuid4().hex}", "id": 7, "failure_code": 3}),
        ("charge.failed", {"merchant_reference": {"nested": "object"}, "id": None}),
    ],
)
def test_signed_events_with_odd_objects_are_acknowledged(
    api: ApiClient, stack: LocalStack, event_type: str, event_object: dict[str, object]
) -> None:
    assert stack.psp_simulator is not None and stack.psp_simulator.webhooks.secret is not None
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": event_object},
    }
    body = json.dumps(event).encode()
    header = signature_header(stack.psp_simulator.webhooks.secret, int(time.time()), body)
    answered = api.request("POST", "/v1/webhooks/psp", raw=body, headers={"PSP-Signature": header})
    assert answered.status == 200
    assert answered.body == {"received": True, "duplicate": False}
