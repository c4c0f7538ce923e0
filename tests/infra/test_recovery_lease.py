"""The recovery sweep's lease and the orphan-charge alarm, on the template: the sweep only decides an
order once every executor attempt that may still be charging it is over (twice the executor's Lambda
timeout at least, PSP calls and retries included), and an orphan charge pages on-call."""

from __future__ import annotations

from typing import Any

from functions.recovery.settings import DEFAULT_LEASE_SECONDS
from tests.conftest import Synthesized


def _function(synthesized: Synthesized, handler: str) -> dict[str, Any]:
    (props,) = [
        f["Properties"]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == handler
    ]
    return props


def test_the_sweeps_lease_outlasts_any_executor_attempt(synthesized: Synthesized) -> None:
    executor = _function(synthesized, "functions.executor.handler.handler")
    sweep = _function(synthesized, "functions.recovery.handler.handler")
    lease = int(sweep["Environment"]["Variables"]["LEASE_SECONDS"])
    assert lease == max(DEFAULT_LEASE_SECONDS, 2 * executor["Timeout"])
    assert lease >= 2 * executor["Timeout"]
