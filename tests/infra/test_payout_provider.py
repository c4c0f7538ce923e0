"""The payout provider on the template: a contradicting verdict from it pages someone, on its own receiver's
metric; the executor reaches the provider at the stage's URL, never the PSP's."""

from __future__ import annotations

from tests.conftest import Synthesized
from tests.infra.template_facts import by_base_name, references


def test_a_contradicting_payout_verdict_is_alarmed(synthesized: Synthesized) -> None:
    alarms = [
        a["Properties"]
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "PayoutWebhooksConflict"
    ]
    assert len(alarms) == 1
    (alarm,) = alarms
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "payout-webhooks"}]
    assert (alarm["Namespace"], alarm["Statistic"], alarm["Period"]) == ("Payments", "Maximum", 300)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    topic_id = next(iter(synthesized.resources("AWS::SNS::Topic")))
    assert [references(action) for action in alarm["AlarmActions"]] == [[topic_id]]


def test_the_payout_executor_calls_the_stages_payout_provider(synthesized: Synthesized) -> None:
    functions = by_base_name(synthesized.template, "AWS::Lambda::Function")
    variables = functions["PayoutsPayoutExecutorFunction"][1]["Properties"]["Environment"]["Variables"]
    assert variables["PAYOUT_PROVIDER_URL"] == "https://payouts.invalid"  # the default stage context
    assert "PSP_BASE_URL" not in variables


def test_the_provider_receiver_writes_only_its_own_event_ids(synthesized: Synthesized) -> None:
    events_table = by_base_name(synthesized.template, "AWS::DynamoDB::Table")["PspWebhooksEventsTable"][0]
    (policy,) = [
        p["Properties"]
        for logical_id, p in synthesized.resources("AWS::IAM::Policy").items()
        if logical_id.startswith("PayoutProviderWebhooksRole")
    ]
    on_events = [
        statement
        for statement in policy["PolicyDocument"]["Statement"]
        if any(events_table in references(r) for r in _as_list(statement["Resource"]))
    ]
    assert [(sorted(_as_list(s["Action"])), s.get("Condition")) for s in on_events] == [
        (
            ["dynamodb:GetItem", "dynamodb:PutItem"],
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["payout-provider/*"]}},
        )
    ]


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]
