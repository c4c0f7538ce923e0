"""The recovery of refunds left PENDING (functions/refund/recovery.py): every few minutes, refunds PENDING past
a deadline are looked up at the PSP by merchant reference and settled, or sent to the executor again once
their message can no longer be retried; an alarm fires for refunds stuck past a second deadline."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.psp.settings import default_retry_policy
from functions.refund.models import REFUNDS_BY_STATUS
from functions.refund.settings import RefundRecoverySettings
from infra.constructs.alarms import ON_ANY_OCCURRENCE
from infra.constructs.encryption import psp_api_key_secret
from infra.constructs.function import ServiceFunction
from infra.constructs.refunds import Refunds
from infra.constructs.table_access import grant_items

REFUND_RECOVERY_SERVICE = "refund-recovery"


class RefundSweep(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_topic: sns.ITopic,
        refunds: Refunds,
        schedule_failures: sqs.IQueue,
        psp_base_url: str,
        rate: Duration = Duration.minutes(5),
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = ServiceFunction(
            self,
            "Function",
            handler="functions.refund.handler.recovery_handler",
            settings_model=RefundRecoverySettings,
            service_name=REFUND_RECOVERY_SERVICE,
            description="Settles refunds left PENDING by asking the PSP by merchant reference.",
            timeout=Duration.minutes(5),
            refunds_table=refunds.table.table_name,
            refund_queue_url=refunds.refund_queue.queue.queue_url,
            wallet_refunds_queue_url=refunds.wallet_refunds_queue.queue.queue_url,
            # The refund queue retries a message this long: until then, no refund at the PSP is not yet lost.
            retry_window_seconds=default_retry_policy().max_age_seconds,
            psp_base_url=psp_base_url,
            psp_api_key_secret=psp_api_key_secret(self).secret_arn,
            # One sweep at a time: overlapping sweeps would ask the PSP about the same refunds twice.
            reserved_concurrency=1,
            dead_letter_queue=schedule_failures,
        )
        sweeper = self.function.function
        # pending_since (Query on the status index), the conditional transitions, and the failure's
        # transaction with the charge's refunded total.
        grant_items(
            refunds.table, sweeper, "dynamodb:GetItem", "dynamodb:UpdateItem", query_indexes=[REFUNDS_BY_STATUS]
        )
        psp_api_key_secret(self).grant_read(sweeper)
        refunds.refund_queue.queue.grant_send_messages(sweeper)
        refunds.wallet_refunds_queue.queue.grant_send_messages(sweeper)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Resolve refunds left PENDING",
            schedule=events.Schedule.rate(rate),
            targets=[targets.LambdaFunction(sweeper, retry_attempts=2)],
        )
        stuck = cloudwatch.Metric(
            namespace="Payments",
            metric_name="RefundsStuck",
            dimensions_map={"service": REFUND_RECOVERY_SERVICE},
            statistic="Maximum",
            period=Duration.minutes(15),
        ).create_alarm(
            self,
            "RefundsStuckAlarm",
            evaluation_periods=1,
            **ON_ANY_OCCURRENCE,
            alarm_description="Refunds still PENDING past the second deadline, after asking the PSP.",
        )
        stuck.add_alarm_action(cw_actions.SnsAction(alarm_topic))
