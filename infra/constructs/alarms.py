"""What most of the stack's alarms share: they fire on any occurrence of what they count; and what the
scheduled functions share: EventBridge invokes them, retrying twice."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

METRICS_NAMESPACE = "Payments"  # Powertools' namespace of every function (functions/common/observability.py)

# Above zero in a period is an alarm; a period with no data is one where nothing happened.
ON_ANY_OCCURRENCE: dict[str, Any] = {
    "threshold": 0,
    "comparison_operator": cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    "treat_missing_data": cloudwatch.TreatMissingData.NOT_BREACHING,
}


def alarm_on_service_metric(
    scope: Construct,
    construct_id: str,
    *,
    metric_name: str,
    service: str,
    period: Duration,
    description: str,
    alarm_topic: sns.ITopic,
) -> cloudwatch.Alarm:
    """An alarm, to the alarm topic, on any occurrence of one function's metric (its Powertools service)."""
    alarm = cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"service": service},
        statistic="Maximum",
        period=period,
    ).create_alarm(scope, construct_id, evaluation_periods=1, **ON_ANY_OCCURRENCE, alarm_description=description)
    alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
    return alarm


def run_on_schedule(
    scope: Construct, construct_id: str, *, function: lambda_.IFunction, schedule: events.Schedule, description: str
) -> events.Rule:
    """A scheduled invocation, retried twice by EventBridge (the function's own DLQ takes what still fails)."""
    return events.Rule(
        scope,
        construct_id,
        description=description,
        schedule=schedule,
        targets=[targets.LambdaFunction(function, retry_attempts=2)],
    )
