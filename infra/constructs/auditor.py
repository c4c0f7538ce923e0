"""The money auditor (functions/auditor): hourly, read-only, one metric per check and an alarm on any
violation. Its grants are reads by name: items and the named indexes of the money tables, the DLQs'
attributes and the PSP API key (for charge look-ups, which never charge)."""

from __future__ import annotations

from aws_cdk import Duration, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.auditor.handler import METRIC_PREFIX
from functions.auditor.models import CHECKS
from functions.auditor.settings import AuditorSettings
from functions.common import decided_index
from functions.executor.store import OPEN_INDEX
from functions.ledger.store import BY_PAYMENT_ORDER_INDEX
from functions.refund.models import REFUNDS_BY_STATUS
from functions.wallet.keys import PAYOUT_DUE_INDEX
from infra.constructs.alarms import ON_ANY_OCCURRENCE, run_on_schedule
from infra.constructs.encryption import psp_api_key_secret
from infra.constructs.function import ServiceFunction
from infra.constructs.pay_in import PayIn
from infra.constructs.queue import MonitoredQueue
from infra.constructs.table_access import grant_items

AUDITOR_SERVICE = "auditor"


class Auditor(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_topic: sns.ITopic,
        pay_in: PayIn,
        schedule_failures: sqs.IQueue,
        psp_base_url: str,
        refunds_table: dynamodb.ITable,
        rate: Duration = Duration.hours(1),
    ) -> None:
        super().__init__(scope, construct_id)
        dead_letter_queues = [q.dlq for q in Stack.of(self).node.find_all() if isinstance(q, MonitoredQueue)]
        self.function = ServiceFunction(
            self,
            "Function",
            handler="functions.auditor.handler.handler",
            settings_model=AuditorSettings,
            service_name=AUDITOR_SERVICE,
            description="Hourly money audit: wallets against the ledger, trial balance, recent orders, DLQs.",
            timeout=Duration.minutes(10),
            wallet_table=pay_in.wallet_table.table_name,
            ledger_table=pay_in.ledger_table.table_name,
            balances_table=pay_in.ledger_balances_table.table_name,
            orders_table=pay_in.executor_table.table_name,
            refunds_table=refunds_table.table_name,
            dead_letter_queue_urls=Fn.join(" ", [q.queue_url for q in dead_letter_queues]),
            psp_base_url=psp_base_url,
            psp_api_key_secret=psp_api_key_secret(self).secret_arn,
            dead_letter_queue=schedule_failures,
        )
        auditor = self.function.function
        # Read-only, by name: GetItem/Query on tables and named indexes, never Scan or a write.
        grant_items(pay_in.wallet_table, auditor, "dynamodb:GetItem", query_indexes=[PAYOUT_DUE_INDEX])
        grant_items(pay_in.ledger_table, auditor, "dynamodb:GetItem", query_indexes=[BY_PAYMENT_ORDER_INDEX])
        grant_items(pay_in.ledger_balances_table, auditor, "dynamodb:GetItem", "dynamodb:Query")
        grant_items(
            pay_in.executor_table,
            auditor,
            "dynamodb:GetItem",
            query_indexes=[decided_index.INDEX, decided_index.FAILED_INDEX, OPEN_INDEX],
        )
        grant_items(refunds_table, auditor, "dynamodb:GetItem", query_indexes=[REFUNDS_BY_STATUS])
        auditor.add_to_role_policy(
            iam.PolicyStatement(actions=["sqs:GetQueueAttributes"], resources=[q.queue_arn for q in dead_letter_queues])
        )
        psp_api_key_secret(self).grant_read(auditor)
        self.schedule = run_on_schedule(
            self,
            "Schedule",
            function=auditor,
            schedule=events.Schedule.rate(rate),
            description="Audit the money: wallets, ledger, recent orders, dead-letter queues",
        )
        # One metric per check (the count of its violations); the alarm fires on any of them.
        period = Duration.hours(1)
        per_check = {
            f"m{n}": cloudwatch.Metric(
                namespace="Payments",
                metric_name=METRIC_PREFIX + check,
                dimensions_map={"service": AUDITOR_SERVICE},
                statistic="Maximum",
                period=period,
            )
            for n, check in enumerate(CHECKS)
        }
        self.alarm = cloudwatch.MathExpression(
            expression=" + ".join(f"FILL({m}, 0)" for m in per_check),
            using_metrics=per_check,
            period=period,
            label="Audit violations",
        ).create_alarm(
            self,
            "ViolationsAlarm",
            evaluation_periods=1,
            **ON_ANY_OCCURRENCE,
            alarm_description="The money auditor found a violation (money not conserved, an order incomplete, a "
            "stuck order or a dead-lettered message): its log lists each finding with the ids involved.",
        )
        self.alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
