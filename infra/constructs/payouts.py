"""Pay-outs: the payout API and its saga, the payout executor (functions/payout_executor: submits each
payout to the payout provider and answers the saga's task tokens), and the daily scheduled payout run."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.payout.settings import PayoutApiSettings, ScheduledPayoutSettings
from functions.payout_executor.settings import PayoutExecutorSettings
from functions.reconciliation.records_store import PAYOUTS_BY_STATUS_INDEX
from functions.wallet.keys import PARTITION_KEY, PAYOUT_DUE_ATTRIBUTE, PAYOUT_DUE_INDEX, SORT_KEY
from infra.constructs.alarms import ON_ANY_OCCURRENCE, run_on_schedule
from infra.constructs.function import ServiceFunction
from infra.constructs.pay_in import (
    PSP_WORKER_MAX_RECEIVE_COUNT,
    QUEUE_VISIBILITY,
    WORKER_TIMEOUT,
    PayIn,
    grant_psp_worker,
    sqs_source,
)
from infra.constructs.payout_provider import PayoutProvider
from infra.constructs.payout_saga import PayoutSaga
from infra.constructs.queue import MonitoredQueue
from infra.constructs.sellers import Sellers
from infra.constructs.table_access import grant_items
from infra.constructs.tables import money_table
from infra.nag import acknowledge_table_indexes


class Payouts(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_topic: sns.ITopic,
        pay_in: PayIn,
        sellers: Sellers,
        provider: PayoutProvider,
        payout_provider_url: str,
        payout_threshold_major: int = 100,
    ) -> None:
        super().__init__(scope, construct_id)
        action = cw_actions.SnsAction(alarm_topic)

        # Scheduled (asynchronous) invocations that still fail after Lambda's retries: alarmed.
        self.schedule_failures = MonitoredQueue(
            self, "ScheduleFailures", visibility_timeout=QUEUE_VISIBILITY, alarm_topic=alarm_topic
        )

        # payout service: its table, the saga, the API and the daily run
        # Its stream: payout outcomes become marketplace events (infra/constructs/events.py).
        self.payouts_table = money_table(
            self, "PayoutsTable", partition_key="payout_id", stream=dynamodb.StreamViewType.NEW_IMAGE
        )
        # Payouts by status and last change: reconciliation reads the PAID ones of a settlement file's span.
        self.payouts_table.add_global_secondary_index(
            index_name=PAYOUTS_BY_STATUS_INDEX,
            partition_key=dynamodb.Attribute(name="status", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="updated_at", type=dynamodb.AttributeType.STRING),
        )
        self.payout_queue = MonitoredQueue(
            self,
            "PayoutQueue",
            visibility_timeout=QUEUE_VISIBILITY,
            alarm_topic=alarm_topic,
            max_receive_count=PSP_WORKER_MAX_RECEIVE_COUNT,
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
                evaluation_periods=1,
                **ON_ANY_OCCURRENCE,
                alarm_description="A pay-out saga failed: NeedsAttention (its funds stay reserved until a "
                "person resolves it with the PSP) or InsufficientFunds (two payouts raced for one balance).",
            ).add_alarm_action(action)

        self.api = ServiceFunction(
            self,
            "PayoutApi",
            handler="functions.payout.api.api_handler",
            settings_model=PayoutApiSettings,
            service_name="payout",
            description="Payouts API: request a payout (idempotent), read its status.",
            payouts_table=self.payouts_table.table_name,
            wallet_table=pay_in.wallet_table.table_name,
            sellers_table=sellers.table.table_name,
            idempotency_table=pay_in.idempotency_table.table_name,
            state_machine_arn=machine.state_machine_arn,
        )
        sellers.grant_read_accounts(self.api.function)
        self.payouts_table.grant_read_write_data(self.api.function)
        acknowledge_table_indexes(self.api.role, self.payouts_table)  # (the reconciliation's index of paid payouts)
        grant_items(pay_in.wallet_table, self.api.function, "dynamodb:GetItem")
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
            sellers_table=sellers.table.table_name,
            state_machine_arn=machine.state_machine_arn,
            threshold_major=payout_threshold_major,
            dead_letter_queue=self.schedule_failures.queue,
        )
        sellers.grant_read_accounts(self.scheduled.function)
        self.payouts_table.grant_read_write_data(self.scheduled.function)
        acknowledge_table_indexes(self.scheduled.role, self.payouts_table)
        # The wallet: read balances and the payout-due index (never a Scan), and take an emptied balance
        # off the index; the UpdateItem may name only the index attribute and the balance it tests.
        grant_items(pay_in.wallet_table, self.scheduled.function, "dynamodb:GetItem", query_indexes=[PAYOUT_DUE_INDEX])
        self.scheduled.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem"],
                resources=[pay_in.wallet_table.table_arn],
                conditions={
                    "ForAllValues:StringEquals": {
                        "dynamodb:Attributes": [PARTITION_KEY, SORT_KEY, PAYOUT_DUE_ATTRIBUTE, "available"]
                    },
                    "StringEqualsIfExists": {"dynamodb:ReturnValues": "NONE"},
                },
            )
        )
        machine.grant_start_execution(self.scheduled.function)
        self.daily_rule = run_on_schedule(
            self,
            "DailyPayouts",
            function=self.scheduled.function,
            schedule=events.Schedule.cron(minute="0", hour="6"),
            description="Daily scheduled payouts",
        )

        # the payout executor (answers the saga's task tokens)
        self.payout_executions_table = money_table(self, "PayoutExecutionsTable", partition_key="payout_id")
        self.executor = ServiceFunction(
            self,
            "PayoutExecutor",
            handler="functions.payout_executor.handler.handler",
            settings_model=PayoutExecutorSettings,
            service_name="payout-executor",
            description="Submits payouts to the payout provider (idempotency key = payout_id) and parks "
            "confirmation tokens.",
            timeout=WORKER_TIMEOUT,
            payouts_table=self.payout_executions_table.table_name,
            payout_provider_url=payout_provider_url,
            payout_provider_api_key_secret=provider.api_key.secret_arn,
            dead_letter_queue_url=self.payout_queue.dlq.queue_url,
            circuit_table=pay_in.psp_circuit_table.table_name,
            sellers_table=sellers.table.table_name,
            accounts_key_arn=sellers.accounts_key.key_arn,
        )
        sellers.grant_open_accounts(self.executor.function)
        grant_psp_worker(
            self.executor, queue=self.payout_queue, circuit_table=pay_in.psp_circuit_table, alarm_topic=alarm_topic
        )
        self.payout_executions_table.grant_read_write_data(self.executor.function)
        provider.api_key.grant_read(self.executor.function)
        machine.grant_task_response(self.executor.function)
        self.executor.function.add_event_source(sqs_source(self.payout_queue.queue))
