"""The resolution of undecided orders (functions/recovery): every few minutes, orders left EXECUTING or
PENDING past a deadline, whose executor attempt's lease has expired, are looked up at the PSP by
idempotency key and settled; an alarm fires for orders stuck past a second deadline, and for orphan
charges (the PSP charged an order that was decided FAILED) the executor or the sweep recorded."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.executor.store import OPEN_INDEX
from functions.psp.settings import default_retry_policy
from functions.recovery.settings import DEFAULT_LEASE_SECONDS, RecoverySettings
from infra.constructs.alarms import alarm_on_service_metric, run_on_schedule
from infra.constructs.encryption import psp_api_key_secret
from infra.constructs.function import ServiceFunction
from infra.constructs.pay_in import PayIn
from infra.constructs.table_access import grant_items

RECOVERY_SERVICE = "recovery"


def lease_seconds(executor: lambda_.Function) -> int:
    """An executor attempt cannot outlive its Lambda's timeout (its PSP calls and their retries included):
    the lease is at least twice that, so the sweep never decides an order an attempt may still charge."""
    timeout = executor.timeout
    if timeout is None:
        raise ValueError("The executor needs an explicit timeout to derive the recovery lease from.")
    return max(DEFAULT_LEASE_SECONDS, 2 * int(timeout.to_seconds()))


class Recovery(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_topic: sns.ITopic,
        pay_in: PayIn,
        schedule_failures: sqs.IQueue,
        psp_base_url: str,
        rate: Duration = Duration.minutes(5),
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = ServiceFunction(
            self,
            "Function",
            handler="functions.recovery.handler.handler",
            settings_model=RecoverySettings,
            service_name=RECOVERY_SERVICE,
            description="Resolves orders left EXECUTING or PENDING by asking the PSP by idempotency key.",
            timeout=Duration.minutes(5),
            orders_table=pay_in.executor_table.table_name,
            wallet_queue_url=pay_in.wallet_queue.queue.queue_url,
            order_status_queue_url=pay_in.order_status_queue.queue.queue_url,
            lease_seconds=lease_seconds(pay_in.executor.function),
            # The executor queue retries a message this long: until then, no charge is not yet a failure.
            retry_window_seconds=default_retry_policy().max_age_seconds,
            psp_base_url=psp_base_url,
            psp_api_key_secret=psp_api_key_secret(self).secret_arn,
            # One sweep at a time: overlapping sweeps would ask the PSP about the same orders twice.
            reserved_concurrency=1,
            dead_letter_queue=schedule_failures,
        )
        sweeper = self.function.function
        # open_orders (Query on the sparse open index) + conditional decide (re-read when it fails).
        grant_items(
            pay_in.executor_table, sweeper, "dynamodb:GetItem", "dynamodb:UpdateItem", query_indexes=[OPEN_INDEX]
        )
        psp_api_key_secret(self).grant_read(sweeper)
        pay_in.wallet_queue.queue.grant_send_messages(sweeper)
        pay_in.order_status_queue.queue.grant_send_messages(sweeper)
        self.schedule = run_on_schedule(
            self,
            "Schedule",
            function=sweeper,
            schedule=events.Schedule.rate(rate),
            description="Resolve undecided payment orders",
        )
        alarm_on_service_metric(
            self,
            "OrdersStuckAlarm",
            metric_name="OrdersStuck",
            service=RECOVERY_SERVICE,
            period=Duration.minutes(15),
            description="Payment orders still undecided past the second deadline, after asking the PSP.",
            alarm_topic=alarm_topic,
        )
