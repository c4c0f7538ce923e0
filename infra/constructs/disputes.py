"""Disputes (functions/disputes): the disputes table, the queue the PSP webhook receiver hands dispute
notices to, the worker that applies them (dispute record + the seller's wallet in one transaction, then the
ledger's postings queue), and the read API.

The table's stream (new and old images) carries each dispute's state changes, created OPEN and closed WON or
LOST, for a consumer that publishes `dispute.created` / `dispute.closed` from them."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.disputes.handler import DISPUTE_CONFLICTS_METRIC
from functions.disputes.settings import DisputesApiSettings, DisputesSettings
from functions.disputes.store import BY_PAYMENT_ORDER_INDEX
from functions.reconciliation.records_store import DISPUTES_OPENED, DISPUTES_WON
from functions.wallet.keys import PARTITION_KEY, PAYOUT_DUE_ATTRIBUTE, SORT_KEY
from infra.constructs.alarms import ON_ANY_OCCURRENCE
from infra.constructs.function import ServiceFunction
from infra.constructs.pay_in import QUEUE_VISIBILITY, PayIn, sqs_source
from infra.constructs.queue import MonitoredQueue
from infra.constructs.table_access import grant_items
from infra.constructs.tables import money_table

DISPUTES_SERVICE = "disputes"


class Disputes(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, alarm_topic: sns.ITopic, pay_in: PayIn) -> None:
        super().__init__(scope, construct_id)
        self.table = money_table(
            self, "DisputesTable", partition_key="dispute_id", stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES
        )
        self.table.add_global_secondary_index(
            index_name=BY_PAYMENT_ORDER_INDEX,
            partition_key=dynamodb.Attribute(name="payment_order_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.STRING),
        )
        # Reconciliation's reads: the disputes the PSP took money for, by when they opened, and those won
        # (the money came back), by when they closed (functions/reconciliation/records_store.py).
        for index_name, time_attribute in ((DISPUTES_OPENED.index, "created_at"), (DISPUTES_WON.index, "closed_at")):
            self.table.add_global_secondary_index(
                index_name=index_name,
                partition_key=dynamodb.Attribute(name="status", type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=time_attribute, type=dynamodb.AttributeType.STRING),
            )
        self.queue = MonitoredQueue(self, "NoticesQueue", visibility_timeout=QUEUE_VISIBILITY, alarm_topic=alarm_topic)

        self.worker = ServiceFunction(
            self,
            "Worker",
            handler="functions.disputes.handler.handler",
            settings_model=DisputesSettings,
            service_name=DISPUTES_SERVICE,
            description="Applies the PSP's dispute notices once: reserves, gives back or pays out the money.",
            disputes_table=self.table.table_name,
            wallet_table=pay_in.wallet_table.table_name,
            ledger_postings_queue_url=pay_in.ledger_postings_queue.queue.queue_url,
        )
        worker = self.worker.function
        # The dispute's item: the conditional create and close (in a transaction), and the re-read.
        grant_items(self.table, worker, "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem")
        # The wallet: UpdateItem of a balance's amounts (and the payout-due index it joins) and of a held
        # order's pending share (conditional on its hold_status), nothing else; GetItem to read the hold.
        grant_items(pay_in.wallet_table, worker, "dynamodb:GetItem")
        worker.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem"],
                resources=[pay_in.wallet_table.table_arn],
                conditions={
                    "ForAllValues:StringEquals": {
                        "dynamodb:Attributes": [
                            PARTITION_KEY,
                            SORT_KEY,
                            "available",
                            "reserved",
                            "pending",
                            "hold_status",
                            PAYOUT_DUE_ATTRIBUTE,
                        ]
                    },
                    "StringEqualsIfExists": {"dynamodb:ReturnValues": "NONE"},
                },
            )
        )
        pay_in.ledger_postings_queue.queue.grant_send_messages(worker)
        worker.add_event_source(sqs_source(self.queue.queue))
        cloudwatch.Metric(
            namespace="Payments",
            metric_name=DISPUTE_CONFLICTS_METRIC,
            dimensions_map={"service": DISPUTES_SERVICE},
            statistic="Sum",
            period=Duration.minutes(5),
        ).create_alarm(
            self,
            "ConflictsAlarm",
            evaluation_periods=1,
            **ON_ANY_OCCURRENCE,
            alarm_description="A PSP dispute notice contradicted its stored dispute (other money, or the other "
            "outcome): it was not applied and is in the disputes dead-letter queue for a person.",
        ).add_alarm_action(cw_actions.SnsAction(alarm_topic))

        self.api = ServiceFunction(
            self,
            "Api",
            handler="functions.disputes.api.api_handler",
            settings_model=DisputesApiSettings,
            service_name="disputes-api",
            description="Reads disputes, by id or by payment order.",
            disputes_table=self.table.table_name,
        )
        grant_items(self.table, self.api.function, "dynamodb:GetItem", query_indexes=[BY_PAYMENT_ORDER_INDEX])
