"""The recovery of refunds left PENDING (functions/refund/recovery.py): every few minutes, refunds PENDING past
a deadline are looked up at the PSP by merchant reference and settled, or sent to the executor again once
their message can no longer be retried; an alarm fires for refunds stuck past a second deadline."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.psp.settings import default_retry_policy
from functions.refund.models import REFUNDS_BY_STATUS
from functions.refund.settings import RefundRecoverySettings
from infra.constructs.alarms import alarm_on_service_metric, run_on_schedule
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
        self.schedule = run_on_schedule(
            self,
            "Schedule",
            function=sweeper,
            schedule=events.Schedule.rate(rate),
            description="Resolve refunds left PENDING",
        )
        alarm_on_service_metric(
            self,
            "RefundsStuckAlarm",
            metric_name="RefundsStuck",
            service=REFUND_RECOVERY_SERVICE,
            period=Duration.minutes(15),
            description="Refunds still PENDING past the second deadline, after asking the PSP.",
            alarm_topic=alarm_topic,
        )
