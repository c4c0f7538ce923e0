"""The local Lambda runtime enforces the template's timeout as Lambda does: the context counts down from
it, an invocation still running at its timeout is stopped and fails, and every timeout is counted."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from local_stack.deploy import FunctionSpec
from local_stack.lambda_runtime import InvocationError, LambdaService, worker_base_env

SPEC = FunctionSpec(
    logical_id="Sleepy",
    name="payments-sleepy",
    handler="tests.support.sleepy_handler.handler",
    environment={},
    timeout_seconds=2,
    memory_mb=128,
    reserved_concurrency=1,
)


@pytest.fixture
def lambdas() -> Iterator[LambdaService]:
    service = LambdaService({"Sleepy": SPEC}, base_env=worker_base_env("http://127.0.0.1:1"), log=None)
    try:
        yield service
    finally:
        service.close()


def test_the_context_counts_down_from_the_functions_timeout(lambdas: LambdaService) -> None:
    result = lambdas.invoke("Sleepy", {"sleep": 0})
    assert 1_500 < result["remaining_ms_at_start"] <= 2_000
    assert lambdas.timeouts() == {}


def test_an_invocation_running_past_its_timeout_fails_and_is_counted(lambdas: LambdaService) -> None:
    started = time.monotonic()
    with pytest.raises(InvocationError, match="timed out after 2s"):
        lambdas.invoke("Sleepy", {"sleep": 120})
    # Stopped at the timeout, not when the handler would have finished: a ratio to the handler's own
    # sleep, not a tight bound, because these machines are shared and their timings noisy
    assert time.monotonic() - started < 60
    assert lambdas.timeouts() == {"payments-sleepy": 1}
    # And the next invocation gets a fresh execution environment that works
    assert lambdas.invoke("Sleepy", {"sleep": 0})["remaining_ms_at_start"] > 1_500
    assert lambdas.timeouts() == {"payments-sleepy": 1}


def test_an_answer_that_came_after_the_timeout_is_a_timeout_too(lambdas: LambdaService) -> None:
    with pytest.raises(InvocationError, match="timed out"):
        lambdas.invoke("Sleepy", {"sleep": 2.2})  # answers within the pipe's grace, but late
    assert lambdas.timeouts() == {"payments-sleepy": 1}
