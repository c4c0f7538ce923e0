"""Alarms on money that went where it should not: an orphan charge (the PSP charged an order we decided
FAILED), from whichever function saw it, and a PSP refusal we do not know."""

from __future__ import annotations

from typing import Any

from tests.conftest import Synthesized


def _alarm_on(synthesized: Synthesized, metric: str) -> dict[str, Any]:
    """The one alarm whose metric math sums `metric` over services: its properties and {service: metric}."""
    found = []
    for alarm in synthesized.resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        if stats and all(s["MetricName"] == metric for s in stats):
            found.append(props)
    assert len(found) == 1, metric
    return found[0]


def _services(props: dict[str, Any]) -> list[str]:
    return sorted(
        d["Value"]
        for m in props["Metrics"]
        if "MetricStat" in m
        for d in m["MetricStat"]["Metric"]["Dimensions"]
        if d["Name"] == "service"
    )


def test_a10_orphan_charges_from_any_function_raise_an_alarm(synthesized: Synthesized) -> None:
    props = _alarm_on(synthesized, "OrphanCharges")
    assert _services(props) == ["executor", "psp-webhooks", "recovery"]
    assert (props["Threshold"], props["ComparisonOperator"], props["EvaluationPeriods"]) == (
        0,
        "GreaterThanThreshold",
        1,
    )
    assert [m["MetricStat"]["Metric"]["Namespace"] for m in props["Metrics"] if "MetricStat" in m] == ["Payments"] * 3
    ((topic, _),) = synthesized.resources("AWS::SNS::Topic").items()
    assert props["AlarmActions"] == [{"Ref": topic}]
    assert "refund" in props["AlarmDescription"]


def test_a10_unknown_psp_refusals_raise_an_alarm(synthesized: Synthesized) -> None:
    props = _alarm_on(synthesized, "PspUnknownRefusal")
    assert _services(props) == ["executor", "payout-executor"]
    assert (props["Threshold"], props["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_a_settlement_day_without_its_file_raises_an_alarm_on_the_deadline_checks_metric(
    synthesized: Synthesized,
) -> None:
    found = [
        alarm["Properties"]
        for alarm in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "SettlementFileMissing"
    ]
    assert len(found) == 1
    props = found[0]
    # the metric the deadline function publishes: namespace, service dimension (its Powertools service name)
    assert (props["Namespace"], props["Dimensions"]) == (
        "Payments",
        [{"Name": "service", "Value": "settlement-deadline"}],
    )
    deadline = [
        f["Properties"]["Environment"]["Variables"]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "functions.reconciliation.handler.deadline_handler"
    ]
    assert [env["POWERTOOLS_SERVICE_NAME"] for env in deadline] == ["settlement-deadline"]
    assert (props["Statistic"], props["Period"], props["EvaluationPeriods"]) == ("Maximum", 3600, 1)
    assert (props["Threshold"], props["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    ((topic, _),) = synthesized.resources("AWS::SNS::Topic").items()
    assert props["AlarmActions"] == [{"Ref": topic}]
