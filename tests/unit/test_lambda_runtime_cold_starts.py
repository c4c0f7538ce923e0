"""The local Lambda runtime under slow cold starts (a loaded machine): an invocation that waits too long
for one fails, but the start is not thrown away - the worker serves the next invocation - and a function
starts one worker at a time, so a burst on a cold function waits for that start instead of piling more
starts onto the machine."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from local_stack import lambda_runtime
from local_stack.deploy import FunctionSpec
from local_stack.lambda_runtime import InvocationError, LambdaService, worker_base_env

SLOW_START_SECONDS = 3


def _spec() -> FunctionSpec:
    return FunctionSpec(
        logical_id="Slow",
        name="payments-slow",
        handler="tests.support.slow_start_handler.handler",
        environment={"SLOW_START_SECONDS": str(SLOW_START_SECONDS)},
        timeout_seconds=5,
        memory_mb=128,
        reserved_concurrency=1,
    )


@pytest.fixture
def patient_for_one_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_runtime, "COLD_START_SECONDS", 1)


@pytest.fixture
def one_slot(patient_for_one_second: None) -> Iterator[LambdaService]:
    service = LambdaService({"Slow": _spec()}, base_env=worker_base_env("http://127.0.0.1:1"), log=None)
    try:
        yield service
    finally:
        service.close()


def test_a_cold_start_past_the_wait_fails_the_invocation_and_serves_the_next(one_slot: LambdaService) -> None:
    # When the first invocation waits 1 s for a worker that takes 3 s to start
    with pytest.raises(InvocationError, match="did not start within 1s"):
        one_slot.invoke("Slow", {})

    # Then the next invocation is served by that same worker, once it is ready (no second start)
    answer = one_slot.invoke("Slow", {})
    assert one_slot.pools["Slow"].pids() == [answer["pid"]]


def test_a_burst_on_a_cold_function_waits_for_one_start(one_slot: LambdaService) -> None:
    # When five invocations arrive at once at a cold function
    def invoke(_: int) -> int | str:
        try:
            return int(one_slot.invoke("Slow", {})["pid"])
        except InvocationError as error:
            return str(error)

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(invoke, range(5)))

    # Then one worker was started, by the invocation that gave up waiting for it; the other four waited and
    # were served by it once ready (before, each of the five started a worker of its own)
    failed = [a for a in answers if isinstance(a, str)]
    served = {a for a in answers if isinstance(a, int)}
    assert len(failed) == 1 and "did not start within 1s" in failed[0], answers
    assert one_slot.pools["Slow"].pids() == list(served)
