"""The scheduled money auditor on the template: hourly, read-only, watching every DLQ, one metric per
check and an alarm on the sum of them."""

from __future__ import annotations

from typing import Any

from functions.auditor.handler import METRIC_PREFIX
from functions.auditor.models import CHECKS
from tests.conftest import Synthesized
from tests.infra.template_facts import as_list, base_name, resource_name

HANDLER = "functions.auditor.handler.handler"
WRITES = ("Put", "Update", "Delete", "BatchWrite", "Scan", "PartiQL", "SendMessage", "StartExecution")


def _auditor(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    ((logical_id, function),) = [
        (logical_id, f)
        for logical_id, f in synthesized.resources("AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == HANDLER
    ]
    return logical_id, function["Properties"]


def test_the_auditor_runs_every_hour(synthesized: Synthesized) -> None:
    logical_id, _ = _auditor(synthesized)
    rules = [
        rule["Properties"]
        for rule in synthesized.resources("AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [logical_id, "Arn"]} for t in rule["Properties"]["Targets"])
    ]
    assert [(r["ScheduleExpression"], r["State"]) for r in rules] == [("rate(1 hour)", "ENABLED")]


def test_the_auditor_watches_every_dead_letter_queue(synthesized: Synthesized) -> None:
    _, props = _auditor(synthesized)
    joined = props["Environment"]["Variables"]["DEAD_LETTER_QUEUE_URLS"]["Fn::Join"]
    assert joined[0] == " "
    watched = {base_name(part["Ref"]) for part in joined[1]}
    queues = {base_name(q) for q in synthesized.resources("AWS::SQS::Queue")}
    assert watched == {q for q in queues if q.endswith("Dlq")}
    assert len(watched) >= 5


def test_the_auditor_is_read_only(synthesized: Synthesized) -> None:
    _, props = _auditor(synthesized)
    role = props["Role"]["Fn::GetAtt"][0]
    actions = {
        (action, resource_name(resource))
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }
    # Only the failed-invocation DLQ of its schedule takes a message (Lambda's async dead-lettering)
    writes = {(a, r) for a, r in actions if any(w in a for w in WRITES) and not a.startswith(("logs:", "xray:"))}
    assert writes == {("sqs:SendMessage", "PayoutsScheduleFailuresQueue")}
    assert ("dynamodb:Scan", "PayInLedgerTable") not in actions
    assert {r for a, r in actions if a == "dynamodb:Query"} == {
        "PayInWalletTable/index/by_payout_due",
        "PayInLedgerTable/index/by_payment_order",
        "PayInLedgerBalancesTable",
        "PayInExecutorTable/index/by_decided_shard",
        "PayInExecutorTable/index/by_failed_shard",
        "PayInExecutorTable/index/by_open",
        "RefundsRefundsTable/index/by_status_updated",
    }


def test_one_metric_per_check_and_an_alarm_on_any_violation(synthesized: Synthesized) -> None:
    alarms = [
        a["Properties"]
        for logical_id, a in synthesized.resources("AWS::CloudWatch::Alarm").items()
        if base_name(logical_id) == "AuditorViolationsAlarm"
    ]
    assert len(alarms) == 1
    alarm = alarms[0]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm["AlarmActions"]
    metrics = [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]
    assert sorted(m["MetricName"] for m in metrics) == sorted(METRIC_PREFIX + check for check in CHECKS)
    assert {(m["Namespace"], d["Name"], d["Value"]) for m in metrics for d in m["Dimensions"]} == {
        ("Payments", "service", "auditor")
    }
    (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
    assert expression.count("FILL(") == len(CHECKS)
