"""Events for the marketplace: outcomes recorded from the owning services' table streams, published on an
EventBridge bus (other teams subscribe with rules of their own), and delivered to the marketplace's webhook
endpoints by an SQS-driven function that signs each POST (docs/architecture.md, Events for the marketplace).

    source tables' streams -> Recorder -> events table -> its stream -> Publisher -> bus
    bus rule -> FanoutQueue -> Fanout -> DeliveryQueue (one message per event and endpoint) -> Delivery -> POST

Endpoint secrets are encrypted with a key of their own: the API may encrypt (and decrypt, to answer a
retried registration); the delivery function may decrypt; no other role holds it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.events import endpoint_store, event_store
from functions.events.models import BUS_SOURCE
from functions.events.settings import (
    EventDeliverySettings,
    EventFanoutSettings,
    EventPublisherSettings,
    EventRecorderSettings,
    EventsApiSettings,
    default_delivery_retry_policy,
)
from functions.events.sources import SOURCE_STATUSES
from infra.constructs.alarms import ON_ANY_OCCURRENCE
from infra.constructs.encryption import encryption_key, field_key
from infra.constructs.function import ServiceFunction
from infra.constructs.pay_in import QUEUE_VISIBILITY, sqs_source
from infra.constructs.queue import MonitoredQueue
from infra.constructs.table_access import grant_items
from infra.constructs.tables import money_table

DELIVERY_TIMEOUT = Duration.seconds(60)
# A delivery message lives as long as its retries (3 days) plus the last backoff; SQS keeps it 4 days.
DELIVERY_MAX_AGE = Duration.seconds(default_delivery_retry_policy().max_age_seconds)
DELIVERY_RECEIVE_BACKSTOP = default_delivery_retry_policy().worst_case_receives()
STREAM_RETRY_ATTEMPTS = 50
# EventBridge's own retries of a target it cannot reach (SQS throttling, KMS), then the target's DLQ.
RULE_RETRY_ATTEMPTS = 185
RULE_MAX_EVENT_AGE_SECONDS = 24 * 3600
EVENTS_PRINCIPAL = "events.amazonaws.com"


def _stream_source(
    table: dynamodb.ITable, *, failures: MonitoredQueue, filters: list[Mapping[str, Any]]
) -> sources.DynamoEventSource:
    return sources.DynamoEventSource(
        table,
        starting_position=lambda_.StartingPosition.TRIM_HORIZON,
        batch_size=50,
        bisect_batch_on_error=True,
        retry_attempts=STREAM_RETRY_ATTEMPTS,
        report_batch_item_failures=True,
        on_failure=sources.SqsDlq(failures.queue),
        filters=filters,
    )


@jsii.implements(events.IRuleTarget)
class _QueueTarget:
    """An SQS target with the queue's DLQ for what EventBridge cannot deliver. Not CDK's SqsQueue target:
    on an encrypted queue it lets events.amazonaws.com send without naming the rule, so any account's rule
    could put "events" on the fan-out queue; the rule is named in the queue policies instead
    (Events._let_the_rule_send)."""

    def __init__(self, queue: MonitoredQueue) -> None:
        self.queue = queue

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self.queue.queue.queue_arn,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self.queue.dlq.queue_arn),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_retry_attempts=RULE_RETRY_ATTEMPTS, maximum_event_age_in_seconds=RULE_MAX_EVENT_AGE_SECONDS
            ),
        )


class Events(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_topic: sns.ITopic,
        source_tables: Mapping[str, dynamodb.ITable],
    ) -> None:
        super().__init__(scope, construct_id)
        unknown = set(source_tables) - set(SOURCE_STATUSES)
        if unknown:
            raise ValueError(f"no event mapping for sources {sorted(unknown)} (functions/events/sources.py)")
        self.secrets_key = field_key(
            self, "WebhookSecretsKey", holds="the marketplace's webhook signing secrets", alias_name="webhook-secrets"
        )
        self.events_table = money_table(
            self,
            "EventsTable",
            partition_key=event_store.PARTITION_KEY,
            stream=dynamodb.StreamViewType.NEW_IMAGE,
        )
        for index, partition in (
            (event_store.BY_TENANT_INDEX, event_store.TENANT_ATTRIBUTE),
            (event_store.BY_TENANT_TYPE_INDEX, event_store.TENANT_TYPE_ATTRIBUTE),
        ):
            self.events_table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=partition, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=event_store.SEQUENCE_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            )
        self.endpoints_table = money_table(
            self,
            "WebhookEndpointsTable",
            partition_key=endpoint_store.PARTITION_KEY,
            sort_key=endpoint_store.SORT_KEY,
        )
        self.bus = events.EventBus(self, "Bus", description="Payments: marketplace events (payments, payouts, ...)")

        self.stream_failures = MonitoredQueue(
            self, "StreamFailures", visibility_timeout=QUEUE_VISIBILITY, alarm_topic=alarm_topic
        )
        self.fanout_queue = MonitoredQueue(
            self, "FanoutQueue", visibility_timeout=QUEUE_VISIBILITY, alarm_topic=alarm_topic
        )
        self.delivery_queue = MonitoredQueue(
            self,
            "DeliveryQueue",
            visibility_timeout=Duration.seconds(DELIVERY_TIMEOUT.to_seconds() * 6),
            alarm_topic=alarm_topic,
            # Deliveries to a failing endpoint wait out their backoff here for up to 3 days, by design: the
            # age alarm is for messages past that, which the worker should have dead-lettered.
            max_message_age=DELIVERY_MAX_AGE.plus(Duration.hours(1)),
            max_receive_count=DELIVERY_RECEIVE_BACKSTOP,
        )

        self.api = ServiceFunction(
            self,
            "EventsApi",
            handler="functions.events.api.api_handler",
            settings_model=EventsApiSettings,
            service_name="events-api",
            description="Webhook endpoints (register, list, remove) and the event list.",
            endpoints_table=self.endpoints_table.table_name,
            events_table=self.events_table.table_name,
            secrets_key_arn=self.secrets_key.key_arn,
        )
        grant_items(
            self.endpoints_table,
            self.api.function,
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:DeleteItem",
        )
        grant_items(
            self.events_table,
            self.api.function,
            "dynamodb:GetItem",
            query_indexes=[event_store.BY_TENANT_INDEX, event_store.BY_TENANT_TYPE_INDEX],
        )
        self.secrets_key.grant(self.api.function, "kms:Encrypt", "kms:Decrypt")

        self.recorder = ServiceFunction(
            self,
            "Recorder",
            handler="functions.events.handler.record_handler",
            settings_model=EventRecorderSettings,
            service_name="events-recorder",
            description="Records each payment and payout outcome as one event, from the owners' table streams.",
            events_table=self.events_table.table_name,
            source_tables=",".join(f"{name}={table.table_name}" for name, table in source_tables.items()),
        )
        grant_items(self.events_table, self.recorder.function, "dynamodb:PutItem", "dynamodb:GetItem")
        for name, table in source_tables.items():
            # Only outcomes wake the recorder (the mapping decides; the filter saves invocations).
            outcome = {
                "eventName": lambda_.FilterRule.or_("INSERT", "MODIFY"),
                "dynamodb": {"NewImage": {"status": {"S": lambda_.FilterRule.or_(*SOURCE_STATUSES[name])}}},
            }
            self.recorder.function.add_event_source(
                _stream_source(table, failures=self.stream_failures, filters=[lambda_.FilterCriteria.filter(outcome)])
            )

        self.publisher = ServiceFunction(
            self,
            "Publisher",
            handler="functions.events.handler.publish_handler",
            settings_model=EventPublisherSettings,
            service_name="events-publisher",
            description="Puts each newly recorded event on the events bus (the events table is the outbox).",
            event_bus_name=self.bus.event_bus_name,
        )
        self.bus.grant_put_events_to(self.publisher.function)
        self.publisher.function.add_event_source(
            _stream_source(
                self.events_table,
                failures=self.stream_failures,
                filters=[lambda_.FilterCriteria.filter({"eventName": lambda_.FilterRule.is_equal("INSERT")})],
            )
        )

        self.fanout = ServiceFunction(
            self,
            "Fanout",
            handler="functions.events.handler.fanout_handler",
            settings_model=EventFanoutSettings,
            service_name="events-fanout",
            description="Turns each event into one delivery message per subscribed webhook endpoint.",
            endpoints_table=self.endpoints_table.table_name,
            delivery_queue_url=self.delivery_queue.queue.queue_url,
        )
        grant_items(self.endpoints_table, self.fanout.function, "dynamodb:Query")
        self.delivery_queue.queue.grant_send_messages(self.fanout.function)
        self.fanout.function.add_event_source(sqs_source(self.fanout_queue.queue))
        self.to_webhooks = events.Rule(
            self,
            "ToWebhooks",
            event_bus=self.bus,
            description="Every marketplace event to the webhook fan-out",
            event_pattern=events.EventPattern(source=[BUS_SOURCE]),
            targets=[cast(events.IRuleTarget, _QueueTarget(self.fanout_queue))],
        )
        self._let_the_rule_send(self.to_webhooks)

        self.delivery = ServiceFunction(
            self,
            "Delivery",
            handler="functions.events.handler.delivery_handler",
            settings_model=EventDeliverySettings,
            service_name="events-delivery",
            description="Signs and POSTs each event to its endpoint; retried with backoff for up to 3 days.",
            timeout=DELIVERY_TIMEOUT,
            endpoints_table=self.endpoints_table.table_name,
            secrets_key_arn=self.secrets_key.key_arn,
            dead_letter_queue_url=self.delivery_queue.dlq.queue_url,
        )
        grant_items(self.endpoints_table, self.delivery.function, "dynamodb:GetItem")
        self.secrets_key.grant_decrypt(self.delivery.function)
        self.delivery_queue.grant_backoff(self.delivery.function)
        self.delivery.function.add_event_source(sqs_source(self.delivery_queue.queue))

        self._alarm_on_conflicts(alarm_topic)

    def _let_the_rule_send(self, rule: events.Rule) -> None:
        """EventBridge may send to the fan-out queue and its DLQ for this rule only, and use the Messages
        key for this bus's rules (the key policy cannot name the rule: the rule depends on the queue, which
        depends on the key)."""
        for queue in (self.fanout_queue.queue, self.fanout_queue.dlq):
            queue.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal(EVENTS_PRINCIPAL)],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
                )
            )
        stack = Stack.of(self)
        encryption_key(self, "Messages").add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeRulesOfTheEventsBusToTheirQueues",
                principals=[iam.ServicePrincipal(EVENTS_PRINCIPAL)],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="events", resource="rule", resource_name=f"{self.bus.event_bus_name}/*"
                        )
                    },
                },
            )
        )

    def _alarm_on_conflicts(self, alarm_topic: sns.ITopic) -> None:
        cloudwatch.Metric(
            namespace="Payments",
            metric_name="EventConflicts",
            dimensions_map={"service": self.recorder.service_name},
            statistic="Sum",
            period=Duration.minutes(5),
        ).create_alarm(
            self,
            "EventConflictAlarm",
            evaluation_periods=1,
            **ON_ANY_OCCURRENCE,
            alarm_description="An outcome's event id was recorded before with other content: the stored event "
            "stands and was delivered; a person compares it with the owning service's record.",
        ).add_alarm_action(cw_actions.SnsAction(alarm_topic))
