"""A slow or failing PSP (or payout provider) never dead-letters an order or a payout, on the template: every
function that calls one can finish a unit of work within its timeout; the workers' queues keep a message
until its age, not a receive count, says to give up; the circuit breaker has its table and an alarm per
worker, and the payout provider's circuit is its own."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.auditor.settings import AuditorSettings
from functions.common.backoff import SQS_MAX_RECEIVE_COUNT, RetryPolicy
from functions.executor.settings import ExecutorSettings
from functions.payout_executor.settings import PayoutExecutorSettings
from functions.psp.settings import CallTimingSettings, PspSettings, QueueWorkerSettings, default_retry_policy
from functions.recovery.settings import RecoverySettings
from functions.refund.settings import RefundExecutorSettings, RefundRecoverySettings
from local_stack.stack import local_function_settings
from tests.conftest import Synthesized
from tests.infra.template_facts import base_name, by_base_name, joined_text, references

PSP_CALLERS: dict[str, type[PspSettings]] = {
    "PayInExecutorFunction": ExecutorSettings,
    "RefundsRefundExecutorFunction": RefundExecutorSettings,
    "RecoveryFunction": RecoverySettings,
    # The refund sweep looks refunds up by merchant reference (never refunds)
    "RefundSweepFunction": RefundRecoverySettings,
    # The money auditor looks charges up by idempotency key (never charges)
    "AuditorFunction": AuditorSettings,
}
# The payout executor calls the payout provider, not the PSP.
PROVIDER_CALLERS: dict[str, type[CallTimingSettings]] = {"PayoutsPayoutExecutorFunction": PayoutExecutorSettings}
WORKERS: dict[str, type[CallTimingSettings]] = {**PSP_CALLERS, **PROVIDER_CALLERS}
# The sweeps' timeouts; every PSP worker's is 30 s.
SWEEP_TIMEOUTS = {"RecoveryFunction": 300, "RefundSweepFunction": 300, "AuditorFunction": 600}
PSP_WORKER_QUEUES = {
    "PayInExecutorFunction": "PayInExecutorQueue",
    "PayoutsPayoutExecutorFunction": "PayoutsPayoutQueue",
    "RefundsRefundExecutorFunction": "RefundsRefundQueue",
}


def _functions(synthesized: Synthesized) -> dict[str, tuple[str, dict[str, Any]]]:
    return by_base_name(synthesized.template, "AWS::Lambda::Function")


def _environment(props: dict[str, Any]) -> dict[str, str]:
    """The function's environment, each reference (a table name, an ARN) as a placeholder string."""
    return {
        name: value if isinstance(value, str) else f"ref:{references(value)}"
        for name, value in props["Environment"]["Variables"].items()
    }


def test_these_are_every_function_that_calls_the_psp(synthesized: Synthesized) -> None:
    callers = {
        name
        for name, (_, function) in _functions(synthesized).items()
        if "PSP_BASE_URL" in function["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert callers == set(PSP_CALLERS)


def test_the_payout_executor_alone_calls_the_payout_provider_on_a_circuit_of_its_own(synthesized: Synthesized) -> None:
    callers = {
        name
        for name, (_, function) in _functions(synthesized).items()
        if "PAYOUT_PROVIDER_URL" in function["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert callers == set(PROVIDER_CALLERS)
    props = _functions(synthesized)["PayoutsPayoutExecutorFunction"][1]["Properties"]
    settings = PayoutExecutorSettings.from_env(_environment(props))
    executor = ExecutorSettings.from_env(
        _environment(_functions(synthesized)["PayInExecutorFunction"][1]["Properties"])
    )
    assert (settings.circuit_name, executor.circuit_name) == ("payout-provider", "psp")
    assert "PSP_API_KEY_SECRET_ARN" not in props["Environment"]["Variables"]
    # At most four calls a payout (the lookup, the payee, the payment, the lookup again after a refusal),
    # 6 s each at most (two attempts of 3 s), with 3 s of other calls and a 2 s margin: within the 30 s timeout
    assert (settings.call_budget.seconds, settings.record_seconds) == (pytest.approx(6.0), pytest.approx(27.0))
    assert settings.record_seconds + settings.deadline_margin_seconds <= props["Timeout"] == 30


@pytest.mark.parametrize("function", PSP_CALLERS)
def test_a_unit_of_work_fits_in_the_functions_timeout_with_margin(synthesized: Synthesized, function: str) -> None:
    props = _functions(synthesized)[function][1]["Properties"]
    settings = PSP_CALLERS[function].from_env(_environment(props))
    # The settings carry the template's timeout, and the budget relation holds for it
    assert settings.function_timeout_seconds == props["Timeout"]
    assert settings.psp_call_budget.seconds == pytest.approx(6.6)
    assert settings.record_seconds + settings.deadline_margin_seconds <= props["Timeout"]
    # And in numbers: 9.6 s per order or refund, 2 s kept back, in a 30 s worker or the 300 s sweep
    assert (settings.record_seconds, settings.deadline_margin_seconds) == (pytest.approx(9.6), 2.0)
    assert props["Timeout"] == SWEEP_TIMEOUTS.get(function, 30)


def _worker_queue(synthesized: Synthesized, function: str) -> dict[str, Any]:
    queue: dict[str, Any] = by_base_name(synthesized.template, "AWS::SQS::Queue")[PSP_WORKER_QUEUES[function]][1]
    return queue["Properties"]


@pytest.mark.parametrize("function", PSP_WORKER_QUEUES)
def test_the_worker_queue_gives_up_by_age_not_by_receive_count(synthesized: Synthesized, function: str) -> None:
    props = _functions(synthesized)[function][1]["Properties"]
    settings = WORKERS[function].from_env(_environment(props))
    assert isinstance(settings, QueueWorkerSettings)
    policy = settings.retry_policy
    assert policy == default_retry_policy()
    queue = _worker_queue(synthesized, function)
    max_receive_count = queue["RedrivePolicy"]["maxReceiveCount"]
    # Receives within a day, each failing at once and waiting the shortest jittered backoff: 584. The
    # age check (a day) always fires before SQS's redrive does.
    assert policy.worst_case_receives() == 584 == max_receive_count <= SQS_MAX_RECEIVE_COUNT
    # A message outlives its maximum age in the queue (4 days' retention for a day's age)
    assert queue["MessageRetentionPeriod"] == 4 * 86400 > policy.max_age_seconds == 86400
    # A batch that fails as a whole (a crash) comes back after the visibility timeout, never sooner than
    # the shortest backoff at the cap: it cannot use up receives faster than backoff does
    assert queue["VisibilityTimeout"] == 180 >= policy.cap_seconds / 2
    # Messages of functions that keep failing that way reach the DLQ after 584 x 180 s, about 29 hours
    assert max_receive_count * queue["VisibilityTimeout"] / 3600 == pytest.approx(29.2)
    # And it reports its own failures' fate to its own dead-letter queue
    dlq = references(queue["RedrivePolicy"]["deadLetterTargetArn"])
    assert references(props["Environment"]["Variables"]["DEAD_LETTER_QUEUE_URL"]) == dlq


def test_the_local_stacks_shorter_backoff_keeps_the_same_arithmetic(synthesized: Synthesized) -> None:
    # Locally the workers back off for at most 4 s, and give up on a message after 15 minutes
    local = ExecutorSettings.from_env(
        {
            **_environment(_functions(synthesized)["PayInExecutorFunction"][1]["Properties"]),
            **local_function_settings(),
        }
    ).retry_policy
    assert local == RetryPolicy(base_seconds=1, cap_seconds=4, max_age_seconds=900, error_receives=5)
    queue = _worker_queue(synthesized, "PayInExecutorFunction")
    assert local.worst_case_receives() == 453 <= queue["RedrivePolicy"]["maxReceiveCount"]


def test_the_psp_worker_mappings_keep_their_scaling_and_partial_failures(synthesized: Synthesized) -> None:
    functions = _functions(synthesized)
    for function, queue_name in PSP_WORKER_QUEUES.items():
        function_id = functions[function][0]
        (mapping,) = [
            m["Properties"]
            for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
            if references(m["Properties"]["FunctionName"]) == [function_id]
        ]
        assert base_name(references(mapping["EventSourceArn"])[0]) == queue_name
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["BatchSize"] == 10
        assert 2 <= mapping["ScalingConfig"]["MaximumConcurrency"] <= 1000


def test_the_circuit_has_a_small_expiring_table_and_an_alarm_per_psp_worker(synthesized: Synthesized) -> None:
    table_id, table = by_base_name(synthesized.template, "AWS::DynamoDB::Table")["PayInPspCircuitTable"]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "circuit", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert "StreamSpecification" not in props and "GlobalSecondaryIndexes" not in props
    functions = _functions(synthesized)
    for function in PSP_WORKER_QUEUES:
        env = functions[function][1]["Properties"]["Environment"]["Variables"]
        assert references(env["PSP_CIRCUIT_TABLE_NAME"]) == [table_id]
    alarms = [
        a["Properties"]
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "PspCircuitOpen"
    ]
    services = sorted(a["Dimensions"][0]["Value"] for a in alarms)
    assert services == ["executor", "payout-executor", "refund-executor"]
    for alarm in alarms:
        assert (alarm["Namespace"], alarm["Statistic"], alarm["Period"]) == ("Payments", "Maximum", 60)
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_no_worker_message_outlives_what_waits_for_it(synthesized: Synthesized) -> None:
    """A PSP worker's message is retried until its maximum age. The saga's task waiting on a payout message
    must not time out first (a late retry would pay out after the saga gave up), and the recovery sweep must
    not fail an order with no charge while the executor's message may still charge it."""
    max_age = default_retry_policy().max_age_seconds
    _, machine = by_base_name(synthesized.template, "AWS::StepFunctions::StateMachine")["PayoutsPayoutSagaStateMachine"]
    saga = json.loads(joined_text(machine["Properties"]["DefinitionString"]))
    assert saga["States"]["ExecutePayout"]["TimeoutSeconds"] == max_age + 3600
    _, recovery = _functions(synthesized)["RecoveryFunction"]
    environment = _environment(recovery["Properties"])
    assert int(environment["RETRY_WINDOW_SECONDS"]) == max_age
    local = local_function_settings()
    assert local["RETRY_WINDOW_SECONDS"] == local["MAX_MESSAGE_AGE_SECONDS"] == "900"
    # a soak's stack keeps its messages longer, and its sweeps wait as long
    soak = local_function_settings(3600)
    assert soak["RETRY_WINDOW_SECONDS"] == soak["MAX_MESSAGE_AGE_SECONDS"] == "3600"
