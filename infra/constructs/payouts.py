"""Pay-outs and the PSP's side channels: the payout API and its saga, the executor's payout worker,
the signed PSP webhook endpoint, the scheduled resolution of undecided orders (with its stuck-order
alarm), and the daily scheduled payout run."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.executor.payouts import PayoutExecutorSettings
from functions.executor.recovery import RecoverySettings
from functions.executor.webhooks import WebhookSettings
from functions.payout.settings import PayoutApiSettings, ScheduledPayoutSettings
from infra.constructs.encryption import encryption_key
from infra.constructs.function import ServiceFunction
from infra.constructs.pay_in import QUEUE_VISIBILITY, WORKER_TIMEOUT, PayIn, expiring_table, money_table, sqs_source
from infra.constructs.payout_saga import PayoutSaga
from infra.constructs.queue import MonitoredQueue
from infra.nag import acknowledge, acknowledge_table_indexes

RECOVERY_SERVICE = "executor-recovery"
SECRET_ROTATION_REASON = (
    "The PSP issues and rotates the webhook signing secret in its dashboard; rotation here means storing "
    "the new value next to the old one (the verifier accepts every value) - a rotation Lambda could not "
    "create a secret the PSP accepts."
)


class Payouts(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_topic: sns.ITopic,
        pay_in: PayIn,
        psp_base_url: str,
        payout_threshold_major: int = 100,
        recovery_rate: Duration = Duration.minutes(5),
    ) -> None:
        super().__init__(scope, construct_id)
        action = cw_actions.SnsAction(alarm_topic)

        # Scheduled (asynchronous) invocations that still fail after Lambda's retries: alarmed.
        self.schedule_failures = MonitoredQueue(
            self, "ScheduleFailures", visibility_timeout=QUEUE_VISIBILITY, alarm_topic=alarm_topic
        )

        # payout service: its table, the saga, the API and the daily run
        self.payouts_table = money_table(self, "PayoutsTable", partition_key="payout_id")
        self.payout_queue = MonitoredQueue(
            self, "PayoutQueue", visibility_timeout=QUEUE_VISIBILITY, alarm_topic=alarm_topic
        )
        self.saga = PayoutSaga(
            self,
            "PayoutSaga",
            wallet_table=pay_in.wallet_table,
            payouts_table=self.payouts_table,
            payout_queue=self.payout_queue.queue,
            postings_queue=pay_in.ledger_postings_queue.queue,
        )
        machine = self.saga.state_machine
        for name, metric in (
            ("SagaFailedAlarm", machine.metric_failed(period=Duration.minutes(5))),
            ("SagaTimedOutAlarm", machine.metric_timed_out(period=Duration.minutes(5))),
        ):
            metric.create_alarm(
                self,
                name,
                threshold=0,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description="A pay-out saga failed: NeedsAttention (its funds stay reserved until a "
                "person resolves it with the PSP) or InsufficientFunds (two payouts raced for one balance).",
            ).add_alarm_action(action)

        self.api = ServiceFunction(
            self,
            "PayoutApi",
            handler="functions.payout.handler.api_handler",
            settings_model=PayoutApiSettings,
            service_name="payout",
            description="Payouts API: request a payout (idempotent), read its status.",
            payouts_table=self.payouts_table.table_name,
            wallet_table=pay_in.wallet_table.table_name,
            idempotency_table=pay_in.idempotency_table.table_name,
            state_machine_arn=machine.state_machine_arn,
        )
        self.payouts_table.grant_read_write_data(self.api.function)
        pay_in.wallet_table.grant_read_data(self.api.function)
        pay_in.idempotency_table.grant_read_write_data(self.api.function)
        machine.grant_start_execution(self.api.function)

        self.scheduled = ServiceFunction(
            self,
            "ScheduledPayouts",
            handler="functions.payout.handler.scheduled_handler",
            settings_model=ScheduledPayoutSettings,
            service_name="payout-scheduler",
            description="Daily: pays out every seller whose available balance is above the threshold.",
            timeout=Duration.minutes(15),
            payouts_table=self.payouts_table.table_name,
            wallet_table=pay_in.wallet_table.table_name,
            state_machine_arn=machine.state_machine_arn,
            threshold_major=payout_threshold_major,
            dead_letter_queue=self.schedule_failures.queue,
        )
        self.payouts_table.grant_read_write_data(self.scheduled.function)
        pay_in.wallet_table.grant_read_data(self.scheduled.function)
        machine.grant_start_execution(self.scheduled.function)
        self.daily_rule = events.Rule(
            self,
            "DailyPayouts",
            description="Daily scheduled payouts",
            schedule=events.Schedule.cron(minute="0", hour="6"),
            targets=[targets.LambdaFunction(self.scheduled.function, retry_attempts=2)],
        )

        # executor: the payout worker (answers the saga's task tokens)
        self.payout_executions_table = money_table(self, "PayoutExecutionsTable", partition_key="payout_id")
        self.executor = ServiceFunction(
            self,
            "PayoutExecutor",
            handler="functions.executor.handler.payout_handler",
            settings_model=PayoutExecutorSettings,
            service_name="executor-payouts",
            description="Submits payouts to the PSP (idempotency key = payout_id) and parks confirmation tokens.",
            timeout=WORKER_TIMEOUT,
            payouts_table=self.payout_executions_table.table_name,
            psp_base_url=psp_base_url,
        )
        self.payout_executions_table.grant_read_write_data(self.executor.function)
        machine.grant_task_response(self.executor.function)
        self.executor.function.add_event_source(sqs_source(self.payout_queue.queue))

        # executor: PSP webhooks
        self.webhook_secret = secretsmanager.Secret(
            self,
            "WebhookSigningSecret",
            description="PSP webhook signing secrets: a JSON object of every currently valid secret",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}", generate_string_key="current", exclude_punctuation=True
            ),
            encryption_key=encryption_key(self, "Data"),
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(self.webhook_secret, "AwsSolutions-SMG4", SECRET_ROTATION_REASON)
        self.webhook_events_table = expiring_table(
            self, "WebhookEventsTable", partition_key="event_id", ttl_attribute="expires_at"
        )
        self.webhook = ServiceFunction(
            self,
            "Webhook",
            handler="functions.executor.handler.webhook_handler",
            settings_model=WebhookSettings,
            service_name="executor-webhooks",
            description="PSP webhooks: verify the signature, dedupe by event id, settle orders and payouts.",
            orders_table=pay_in.executor_table.table_name,
            payouts_table=self.payout_executions_table.table_name,
            events_table=self.webhook_events_table.table_name,
            secret_arn=self.webhook_secret.secret_arn,
            wallet_queue_url=pay_in.wallet_queue.queue.queue_url,
            order_status_queue_url=pay_in.order_status_queue.queue.queue_url,
        )
        pay_in.executor_table.grant_read_write_data(self.webhook.function)
        self.payout_executions_table.grant_read_write_data(self.webhook.function)
        self.webhook_events_table.grant_read_write_data(self.webhook.function)
        self.webhook_secret.grant_read(self.webhook.function)
        pay_in.wallet_queue.queue.grant_send_messages(self.webhook.function)
        pay_in.order_status_queue.queue.grant_send_messages(self.webhook.function)
        machine.grant_task_response(self.webhook.function)
        acknowledge_table_indexes(self.webhook.role, pay_in.executor_table)

        # executor: resolution of undecided orders, on a schedule
        self.recovery = ServiceFunction(
            self,
            "Recovery",
            handler="functions.executor.handler.recovery_handler",
            settings_model=RecoverySettings,
            service_name=RECOVERY_SERVICE,
            description="Resolves orders left EXECUTING or PENDING by asking the PSP by idempotency key.",
            timeout=Duration.minutes(5),
            orders_table=pay_in.executor_table.table_name,
            wallet_queue_url=pay_in.wallet_queue.queue.queue_url,
            order_status_queue_url=pay_in.order_status_queue.queue.queue_url,
            psp_base_url=psp_base_url,
            # One sweep at a time: overlapping sweeps would ask the PSP about the same orders twice.
            reserved_concurrency=1,
            dead_letter_queue=self.schedule_failures.queue,
        )
        pay_in.executor_table.grant_read_write_data(self.recovery.function)
        pay_in.wallet_queue.queue.grant_send_messages(self.recovery.function)
        pay_in.order_status_queue.queue.grant_send_messages(self.recovery.function)
        acknowledge_table_indexes(self.recovery.role, pay_in.executor_table)
        self.recovery_rule = events.Rule(
            self,
            "RecoverySchedule",
            description="Resolve undecided payment orders",
            schedule=events.Schedule.rate(recovery_rate),
            targets=[targets.LambdaFunction(self.recovery.function, retry_attempts=2)],
        )
        stuck = cloudwatch.Metric(
            namespace="Payments",
            metric_name="OrdersStuck",
            dimensions_map={"service": RECOVERY_SERVICE},
            statistic="Maximum",
            period=Duration.minutes(15),
        ).create_alarm(
            self,
            "OrdersStuckAlarm",
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description="Payment orders still undecided past the second deadline, after asking the PSP.",
        )
        stuck.add_alarm_action(action)
