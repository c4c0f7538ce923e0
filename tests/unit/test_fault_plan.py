"""The soak's fault plan: the same seed injects the same faults, in this build and in another one (a fresh
interpreter with another hash seed); each kind can be switched off; the workload is seeded too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import boto3
import pytest
from botocore.exceptions import ClientError

from local_stack.chaos import Chaos
from local_stack.faults import KINDS, FaultPlan, Throttler, parse_kinds
from local_stack.psp.charges import ChargeBook
from local_stack.soak.workload import TOKEN_WEIGHTS, build_workload

DRAWS = 500
PREVIEW_IN_ANOTHER_BUILD = (
    "import json, sys; from local_stack.faults import FaultPlan; "
    "print(json.dumps(FaultPlan(int(sys.argv[1])).preview(int(sys.argv[2]))))"
)


def _preview_in_another_interpreter(seed: int, hash_seed: str) -> object:
    result = subprocess.run(
        [sys.executable, "-c", PREVIEW_IN_ANOTHER_BUILD, str(seed), str(DRAWS)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
    )
    return json.loads(result.stdout)


def test_the_same_seed_plans_the_same_faults_in_two_builds() -> None:
    # Given the plan of seed 1 drawn here (as JSON, the form another build prints)
    here = json.loads(json.dumps(FaultPlan(1).preview(DRAWS)))

    # When two other interpreters, with different hash seeds, draw the plan of the same seed
    elsewhere = [_preview_in_another_interpreter(1, hash_seed) for hash_seed in ("0", "12345")]

    # Then every stream's decisions are identical, and another seed's are not
    assert elsewhere == [here, here]
    assert json.loads(json.dumps(FaultPlan(2).preview(DRAWS))) != here


def test_a_plan_meets_every_kind_of_fault_and_counts_what_it_injected() -> None:
    plan = FaultPlan(7)
    preview = plan.preview(DRAWS)
    assert plan.total == 0  # a preview draws from a fresh plan, not from this one
    assert {2, 3} <= set(preview["deliveries"])
    assert {"before", "after"} <= set(preview["crashes"])
    assert {"error", "lost"} <= set(preview["psp"])
    assert {"drop", "duplicate", "reorder"} <= {decision for decision, _ in preview["webhooks"]}
    assert any(preview["throttling"][0])

    deliveries = [plan.deliveries() for _ in range(DRAWS)]
    psp = [plan.psp_charge() for _ in range(DRAWS)]
    assert plan.injected["duplicate_delivery"] == sum(d - 1 for d in deliveries)
    assert plan.injected["psp_5xx"] == psp.count("error")
    assert plan.injected["psp_lost_response"] == psp.count("lost")


def test_payout_webhooks_are_never_dropped() -> None:
    # A payout waits for its webhook (the saga's confirmation has no lookup): only charges' may be lost
    plan = FaultPlan(3)
    decisions = Counter(plan.webhook("payout.paid")[0] for _ in range(DRAWS))
    assert decisions["drop"] == 0
    assert decisions["duplicate"] > 0


def test_no_faults_inject_nothing() -> None:
    plan = FaultPlan(1, parse_kinds("none"))
    assert [plan.deliveries() for _ in range(DRAWS)] == [1] * DRAWS
    assert {plan.crash("f") for _ in range(DRAWS)} == {None}
    assert {plan.psp_charge() for _ in range(DRAWS)} == {None}
    assert {plan.webhook("charge.succeeded") for _ in range(DRAWS)} == {(None, 0.0)}
    assert plan.throttle_env("f", 0) == {}
    assert plan.total == 0


def test_kinds_are_parsed_strictly() -> None:
    assert parse_kinds("all") == frozenset(KINDS)
    assert parse_kinds("crashes, psp") == frozenset({"crashes", "psp"})
    with pytest.raises(ValueError, match="unknown fault kinds"):
        parse_kinds("crashes,meteors")


def test_chaos_crashes_requested_by_a_test_come_before_the_plan() -> None:
    chaos = Chaos()
    chaos.crash_next("f")
    chaos.plan = FaultPlan(1, frozenset())
    assert [chaos.crash_point("f"), chaos.crash_point("f")] == ["before", None]
    chaos.duplicate_deliveries = 3
    assert chaos.deliveries() == 3
    chaos.reset()
    assert chaos.deliveries() == 1
    assert chaos.crash_point("f") is None


def test_a_planned_psp_error_charges_nothing_and_a_lost_response_charges_once() -> None:
    book = ChargeBook(lost_response_delay=7.0)
    faults = iter(["error", "lost", None])
    book.fault = lambda: next(faults)
    request = {"amount": 500, "currency": "USD", "payment_method": "tok_visa", "merchant_reference": "po_1"}

    failed = book.create("po_1", request)
    assert (failed.status, book.find(merchant_reference="po_1")) == (500, [])
    lost = book.create("po_1", request)
    assert (lost.status, lost.delay_seconds) == (200, 7.0)
    retried = book.create("po_1", request)
    assert (retried.status, retried.delay_seconds, retried.body["id"]) == (200, 0.0, lost.body["id"])
    assert len(book.find(merchant_reference="po_1")) == 1


def test_a_throttled_dynamodb_call_raises_the_sdk_throttling_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    throttler = Throttler({"seed": 1, "rate": 1.0, "stream": "t"})
    throttler.install()
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with pytest.raises(ClientError) as raised:
        client.get_item(TableName="t", Key={"k": {"S": "1"}})  # never leaves the process
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert isinstance(raised.value, client.exceptions.ProvisionedThroughputExceededException)
    assert throttler.take_count() == 1


def test_the_workload_is_seeded_and_uses_every_token() -> None:
    first, second = build_workload(5, 100, tag="a"), build_workload(5, 100, tag="a")
    assert [c.body for c in first.checkouts] == [c.body for c in second.checkouts]
    assert first.order_count == 259
    tokens = {c.token(o) for c in first.checkouts for o in c.orders}
    assert tokens == set(TOKEN_WEIGHTS)
    other = build_workload(5, 100, tag="b")
    assert [len(c.orders) for c in other.checkouts] == [len(c.orders) for c in first.checkouts]
