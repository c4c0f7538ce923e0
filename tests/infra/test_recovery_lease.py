"""The recovery sweep's lease and the orphan-charge alarm, on the template: the sweep only decides an
order once every executor attempt that may still be charging it is over (twice the executor's Lambda
timeout at least, PSP calls and retries included), and an orphan charge pages on-call."""

from __future__ import annotations

from typing import Any

from functions.recovery.settings import DEFAULT_LEASE_SECONDS
from tests.conftest import Synthesized
from tests.infra.template_facts import references


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


def test_orphan_charges_recorded_by_the_executor_or_the_sweep_raise_the_alarm(synthesized: Synthesized) -> None:
    (alarm,) = [
        a["Properties"]
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if any(
            q.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "OrphanCharges"
            for q in a["Properties"].get("Metrics", [])
        )
    ]
    watched = sorted(
        (
            q["MetricStat"]["Metric"]["Namespace"],
            q["MetricStat"]["Metric"]["Dimensions"][0]["Value"],
            q["MetricStat"]["Stat"],
        )
        for q in alarm["Metrics"]
        if "MetricStat" in q
    )
    assert watched == [("Payments", "executor", "Sum"), ("Payments", "recovery", "Sum")]
    (expression,) = [q for q in alarm["Metrics"] if "Expression" in q]
    assert expression["Expression"] == "FILL(executor, 0) + FILL(recovery, 0)"
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["EvaluationPeriods"]) == (
        "GreaterThanThreshold",
        0,
        1,
    )
    ((topic_id, _),) = synthesized.resources("AWS::SNS::Topic").items()
    assert [references(action) for action in alarm["AlarmActions"]] == [[topic_id]]
