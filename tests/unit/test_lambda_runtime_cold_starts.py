"""The local Lambda runtime under slow cold starts (a loaded machine): an invocation that waits too long
for one fails, but the start is not thrown away - the worker serves the next invocation - and starts in
progress count against the function's concurrency, so a burst never starts more workers than that."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from local_stack import lambda_runtime
from local_stack.deploy import FunctionSpec
from local_stack.lambda_runtime import InvocationError, LambdaService, worker_base_env

SLOW_START_SECONDS = 3


def _spec(concurrency: int) -> FunctionSpec:
    return FunctionSpec(
        logical_id="Slow",
        name="payments-slow",
        handler="tests.support.slow_start_handler.handler",
        environment={"SLOW_START_SECONDS": str(SLOW_START_SECONDS)},
        timeout_seconds=5,
        memory_mb=128,
        reserved_concurrency=concurrency,
    )


@pytest.fixture
def patient_for_one_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_runtime, "COLD_START_SECONDS", 1)


def _service(concurrency: int) -> LambdaService:
    return LambdaService({"Slow": _spec(concurrency)}, base_env=worker_base_env("http://127.0.0.1:1"), log=None)


@pytest.fixture
def one_slot(patient_for_one_second: None) -> Iterator[LambdaService]:
    service = _service(1)
    try:
        yield service
    finally:
        service.close()


@pytest.fixture
def two_slots(patient_for_one_second: None) -> Iterator[LambdaService]:
    service = _service(2)
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


def test_a_burst_on_a_cold_function_starts_no_more_workers_than_its_concurrency(two_slots: LambdaService) -> None:
    # When five invocations arrive at once at a cold function of concurrency 2
    def invoke(_: int) -> int | str:
        try:
            return int(two_slots.invoke("Slow", {})["pid"])
        except InvocationError as error:
            return str(error)

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(invoke, range(5)))

    # Then two workers were started, by the two invocations that gave up waiting for them; the other
    # three waited for a slot and were served by those workers once ready (under the old accounting each
    # of the five started its own)
    failed = [a for a in answers if isinstance(a, str)]
    served = {a for a in answers if isinstance(a, int)}
    assert len(failed) == 2 and all("did not start within 1s" in f for f in failed), answers
    workers = set(two_slots.pools["Slow"].pids())
    assert served <= workers and 1 <= len(workers) <= 2
