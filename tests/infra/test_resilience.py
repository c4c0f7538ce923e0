"""Resilience and observability, on the template: every queue has a DLQ and alarms (DLQ depth, message
age, dead letters nearing expiry) routed to the SNS topic; SQS event sources report batch item failures;
visibility timeouts are at least 6x their consumer's timeout; SQS consumers' copies are capped by their
event source mappings (the executor's by the PSP's rate), never by reserved concurrency; scheduled
functions dead-letter to an alarmed queue; functions have explicit timeouts, memory, X-Ray and log
retention; the dashboard shows what on-call needs."""

from __future__ import annotations

import json
import re
from typing import Any

from functions.reconciliation.models import BREAK_CLASSES
from infra.config import StageConfig
from tests.conftest import Synthesized
from tests.infra.template_facts import base_name, by_base_name, joined_text, references

DEV = StageConfig.for_stage("dev")
# The queues of the PSP workers back off by age: maxReceiveCount is a backstop sized by their retry policy
# (tests/infra/test_brownout_budget.py); every other queue dead-letters after five receives.
PSP_WORKER_QUEUES = {"PayInExecutorQueue": 584, "PayoutsPayoutQueue": 584, "RefundsRefundQueue": 584}
# The webhook delivery queue backs off by age too (3 days), and so do the wallet's holds and refunds queues
# (a week, waiting for a credit; tests/infra/test_wallet_waits.py): each backstop is sized by its own policy.
AGE_BACKOFF_QUEUES = {
    **PSP_WORKER_QUEUES,
    "EventsDeliveryQueue": 151,
    "HoldsWalletHoldsQueue": 681,
    "RefundsWalletRefundsQueue": 681,
}


def _alarm_topic(synthesized: Synthesized) -> str:
    ((topic_id, _),) = synthesized.resources("AWS::SNS::Topic").items()
    return topic_id


def _alarms_on(synthesized: Synthesized, queue_id: str) -> dict[str, dict[str, Any]]:
    """{metric name: alarm properties} for the alarms watching one queue."""
    alarms = {}
    for alarm in synthesized.resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props.get("Namespace") == "AWS/SQS" and references(props["Dimensions"]) == [queue_id]:
            alarms.setdefault(props["MetricName"], props)
    return alarms


def _work_queues(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in synthesized.resources("AWS::SQS::Queue").items() if "RedrivePolicy" in v["Properties"]}


def test_every_queue_has_a_dlq_and_alarms_on_age_and_dlq_depth(synthesized: Synthesized) -> None:
    queues = synthesized.resources("AWS::SQS::Queue")
    work = _work_queues(synthesized)
    dlqs = {references(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])[0] for q in work.values()}
    # Given: every queue is either a work queue with its own DLQ, or a DLQ
    assert set(queues) == set(work) | dlqs and not set(work) & dlqs
    assert len(dlqs) == len(work) >= 7
    for queue_id, queue in work.items():
        props = queue["Properties"]
        assert props["RedrivePolicy"]["maxReceiveCount"] == AGE_BACKOFF_QUEUES.get(base_name(queue_id), 5), queue_id
        (dlq_id,) = references(props["RedrivePolicy"]["deadLetterTargetArn"])
        age = _alarms_on(synthesized, queue_id)["ApproximateAgeOfOldestMessage"]
        assert age["Statistic"] == "Maximum" and age["Threshold"] > 0, queue_id
        dlq_alarms = _alarms_on(synthesized, dlq_id)
        depth = dlq_alarms["ApproximateNumberOfMessagesVisible"]
        assert (depth["Threshold"], depth["ComparisonOperator"]) == (0, "GreaterThanThreshold"), dlq_id
        assert depth["EvaluationPeriods"] == 1 and depth["Period"] == 60
        expiry = dlq_alarms["ApproximateAgeOfOldestMessage"]
        assert expiry["Threshold"] == 10 * 86400 < queues[dlq_id]["Properties"]["MessageRetentionPeriod"] == 14 * 86400


def test_every_alarm_notifies_the_alarm_topic(synthesized: Synthesized) -> None:
    topic = _alarm_topic(synthesized)
    alarms = synthesized.resources("AWS::CloudWatch::Alarm")
    assert len(alarms) >= 3 * len(_work_queues(synthesized)) + len(synthesized.resources("AWS::Lambda::Function")) - 1
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic}], logical_id
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", logical_id
        assert alarm["Properties"]["AlarmDescription"], logical_id


def _functions(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        k: v["Properties"]
        for k, v in synthesized.resources("AWS::Lambda::Function").items()
        if "ZipFile" not in v["Properties"]["Code"]
    }


def test_sqs_event_sources_report_batch_item_failures_and_queues_outlast_their_consumers(
    synthesized: Synthesized,
) -> None:
    functions = _functions(synthesized)
    queues = synthesized.resources("AWS::SQS::Queue")
    mappings = synthesized.resources("AWS::Lambda::EventSourceMapping").values()
    checked = 0
    for mapping in mappings:
        props = mapping["Properties"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        (source,) = references(props["EventSourceArn"])
        if source not in queues:
            continue  # a DynamoDB stream
        checked += 1
        function = functions[references(props["FunctionName"])[0]]
        visibility = queues[source]["Properties"]["VisibilityTimeout"]
        # AWS's guidance: six times the function's timeout, plus the batching window if there is one.
        window = props.get("MaximumBatchingWindowInSeconds", 0)
        assert visibility >= 6 * function["Timeout"] + window, (source, visibility, function["Timeout"], window)
    assert checked >= 7


def test_the_order_status_worker_gathers_a_checkout_s_reports_for_a_second(synthesized: Synthesized) -> None:
    status_id, _ = by_base_name(synthesized.template, "AWS::Lambda::Function")["PayInOrderStatusFunction"]
    (mapping,) = [props for function, props in _sqs_mappings(synthesized) if function == status_id]
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (10, 1)
    windows = [props.get("MaximumBatchingWindowInSeconds") for _, props in _sqs_mappings(synthesized)]
    assert windows.count(1) == 1  # the other workers start on the first message


def _sqs_mappings(synthesized: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    """(function logical id, mapping properties) for every event source mapping that reads a queue."""
    queues = synthesized.resources("AWS::SQS::Queue")
    return [
        (references(m["Properties"]["FunctionName"])[0], m["Properties"])
        for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        if set(references(m["Properties"]["EventSourceArn"])) <= set(queues)
    ]


def test_the_executor_never_runs_more_copies_than_the_psp_allows(synthesized: Synthesized) -> None:
    executor_id, executor = by_base_name(synthesized.template, "AWS::Lambda::Function")["PayInExecutorFunction"]
    # Its queue's event source mapping caps its copies, without reserved concurrency's throttled receives
    (mapping,) = [props for function, props in _sqs_mappings(synthesized) if function == executor_id]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": DEV.executor_concurrency} == {"MaximumConcurrency": 5}
    assert "ReservedConcurrentExecutions" not in executor["Properties"]


def test_no_sqs_triggered_function_reserves_concurrency_its_mapping_caps_it(synthesized: Synthesized) -> None:
    # Reserved concurrency throttles an SQS consumer's receives, and throttled receives count toward the
    # queue's maxReceiveCount: messages would reach the DLQ never processed (docs/DEPLOY.md, Concurrency).
    functions = synthesized.resources("AWS::Lambda::Function")
    mappings = _sqs_mappings(synthesized)
    assert len(mappings) >= 8
    for function_id, props in mappings:
        assert "ReservedConcurrentExecutions" not in functions[function_id]["Properties"], function_id
        # Lambda's range for an SQS mapping's maximum concurrency
        assert 2 <= props["ScalingConfig"]["MaximumConcurrency"] <= 1000, function_id


def test_reserved_concurrency_only_where_one_sweep_at_a_time_matters(synthesized: Synthesized) -> None:
    # The recoveries of stuck orders and refunds ask the PSP about undecided ones, and the hold sweep asks for
    # the releases of due holds: one sweep at a time each.
    reserved = {
        base_name(k): f["Properties"]["ReservedConcurrentExecutions"]
        for k, f in synthesized.resources("AWS::Lambda::Function").items()
        if "ReservedConcurrentExecutions" in f["Properties"]
    }
    assert reserved == {"RecoveryFunction": 1, "RefundSweepFunction": 1, "HoldsHoldSweepFunction": 1}


def test_scheduled_functions_send_failed_invocations_to_an_alarmed_queue(synthesized: Synthesized) -> None:
    functions = synthesized.resources("AWS::Lambda::Function")
    work_queues = _work_queues(synthesized)
    scheduled = [
        references(target["Arn"])[0]
        for rule in synthesized.resources("AWS::Events::Rule").values()
        if "ScheduleExpression" in rule["Properties"]
        for target in rule["Properties"]["Targets"]
    ]
    assert {base_name(f) for f in scheduled} == {
        "PayoutsScheduledPayoutsFunction",
        "RecoveryFunction",
        "RefundSweepFunction",
        "HoldsHoldSweepFunction",
        "AuditorFunction",
        "SettlementDeadlineFunction",
    }
    for function_id in scheduled:
        (queue_id,) = references(functions[function_id]["Properties"]["DeadLetterConfig"]["TargetArn"])
        # A queue with its own DLQ and the age alarm (test_every_queue_has_a_dlq_and_alarms_on_age_and_dlq_depth)
        assert queue_id in work_queues, function_id
        assert _alarms_on(synthesized, queue_id)["ApproximateAgeOfOldestMessage"]["Threshold"] > 0


def test_functions_set_timeout_memory_tracing_arm64_and_log_retention(synthesized: Synthesized) -> None:
    log_groups = synthesized.resources("AWS::Logs::LogGroup")
    functions = _functions(synthesized)
    assert len(functions) >= 12
    for logical_id, props in functions.items():
        assert 3 <= props["Timeout"] <= 900, logical_id
        assert 256 <= props["MemorySize"] <= 10240, logical_id  # set per function (the default is 128)
        assert props["TracingConfig"] == {"Mode": "Active"}, logical_id
        assert props["Architectures"] == ["arm64"], logical_id
        assert props["Runtime"] == "python3.14", logical_id
        (log_group,) = references(props["LoggingConfig"]["LogGroup"])
        assert log_groups[log_group]["Properties"]["RetentionInDays"] == DEV.log_retention_days, logical_id
        assert log_groups[log_group]["DeletionPolicy"] == "Retain", logical_id


def _dashboard(synthesized: Synthesized) -> dict[str, Any]:
    ((_, dashboard),) = synthesized.resources("AWS::CloudWatch::Dashboard").items()
    assert dashboard["Properties"]["DashboardName"] == "payments-dev"
    body = joined_text(dashboard["Properties"]["DashboardBody"])
    # References sit inside JSON strings (queue names, function names): keep them as text.
    parsed: dict[str, Any] = json.loads(re.sub(r"\$\{([^}]*)\}", r"\1", body))
    return parsed


def _widget(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    (widget,) = (w for w in dashboard["widgets"] if w["properties"].get("title") == title)
    props: dict[str, Any] = widget["properties"]
    return props


def _metric_rows(widget: dict[str, Any]) -> list[list[Any]]:
    return [row for row in widget["metrics"]]


def test_dashboard_shows_payments_declines_psp_latency_queues_dlqs_and_breaks(synthesized: Synthesized) -> None:
    dashboard = _dashboard(synthesized)
    payments = _metric_rows(_widget(dashboard, "Payments / min"))
    assert payments[0][:4] == ["Payments", "PaymentsAccepted", "service", "payment"]
    assert {row[1] for row in payments} >= {"PaymentsAccepted", "PaymentsSucceeded", "PaymentsFailed"}
    (declines,) = _metric_rows(_widget(dashboard, "Declines / min"))
    assert declines[:4] == ["Payments", "ChargesDeclined", "service", "executor"]
    latency = _metric_rows(_widget(dashboard, "PSP latency p99 (ms)"))
    assert latency[0][:4] == ["Payments", "PspChargeLatency", "service", "executor"]
    assert latency[0][4]["stat"] == "p99"
    work_queues = {base_name(q) for q in _work_queues(synthesized)}
    ages = _metric_rows(_widget(dashboard, "Queue age: oldest message (s)"))
    assert {row[1] for row in ages} == {"ApproximateAgeOfOldestMessage"}
    assert len(ages) == len(work_queues)
    dlqs = _metric_rows(_widget(dashboard, "Dead-letter queue depth"))
    assert {row[1] for row in dlqs} == {"ApproximateNumberOfMessagesVisible"} and len(dlqs) == len(work_queues)
    expression, *classes = _metric_rows(_widget(dashboard, "Reconciliation breaks (24 h)"))
    assert expression[0]["expression"] == "+".join(f"FILL(b{i},0)" for i in range(len(BREAK_CLASSES)))
    assert [row[:4] for row in classes] == [
        ["Payments", f"SettlementBreaks_{klass}", "service", "reconciliation"] for klass in BREAK_CLASSES
    ]


def test_business_alarms_watch_psp_latency_reconciliation_breaks_and_rejected_files(
    synthesized: Synthesized,
) -> None:
    all_alarms = [a["Properties"] for a in synthesized.resources("AWS::CloudWatch::Alarm").values()]
    alarms = {a["MetricName"]: a for a in all_alarms if a.get("Namespace") == "Payments"}
    assert alarms["PspChargeLatency"]["ExtendedStatistic"] == "p99"
    assert alarms["PspChargeLatency"]["Threshold"] == 1500
    assert alarms["SettlementFileFailed"]["Threshold"] == 0
    (breaks,) = [
        a
        for a in all_alarms
        if any(
            m.get("MetricStat", {}).get("Metric", {}).get("MetricName", "").startswith("SettlementBreaks_")
            for m in a.get("Metrics", [])
        )
    ]
    expression = next(m["Expression"] for m in breaks["Metrics"] if "Expression" in m)
    watched = {m["MetricStat"]["Metric"]["MetricName"] for m in breaks["Metrics"] if "MetricStat" in m}
    assert watched == {f"SettlementBreaks_{klass}" for klass in BREAK_CLASSES}
    assert expression.count("FILL(") == len(BREAK_CLASSES)
    assert (breaks["Threshold"], breaks["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    function_errors = [a for a in all_alarms if a.get("MetricName") == "Errors"]
    assert len(function_errors) == len(_functions(synthesized))
