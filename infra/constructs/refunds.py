"""Refunds (functions/refund): the refunds API, the outbox dispatcher on the refunds table's stream, the
refund executor (the PSP call), the wallet's refund worker, and the automatic refund of orphan charges
(the executor table's stream). Every hand-off is a queue with a DLQ and alarms.

Built in two steps: the refunds table and queues first (the payments API reads each order's refunded
amount from the table), then, once the pay-in path exists, the functions (`connect`)."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.reconciliation.records_store import REFUNDS
from functions.refund.settings import (
    OrphanRefundSettings,
    RefundApiSettings,
    RefundDispatcherSettings,
    RefundExecutorSettings,
)
from functions.refund.store import REFUND_SK
from functions.wallet.settings import WalletRefundSettings
from infra.constructs.encryption import psp_api_key_secret
from infra.constructs.function import ServiceFunction
from infra.constructs.pay_in import (
    PSP_WORKER_MAX_RECEIVE_COUNT,
    QUEUE_VISIBILITY,
    WORKER_TIMEOUT,
    PayIn,
    grant_psp_worker,
    sqs_source,
    wallet_wait_queue,
)
from infra.constructs.queue import MonitoredQueue
from infra.constructs.table_access import grant_items
from infra.constructs.tables import money_table

# What a stream trigger does with a failing batch: halve it, retry, then hand the record to a queue.
_STREAM_RETRIES = 50
# Storing a refund: the transaction that puts it and moves its charge's refunded total, and the reads.
_RESERVE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")


class Refunds(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, alarm_topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.alarm_topic = alarm_topic
        # Every refund's state lives on its own item: the stream carries each change (NEW_AND_OLD_IMAGES, so
        # a consumer can tell which transition happened; the dispatcher takes only new refunds).
        self.table = money_table(
            self, "RefundsTable", partition_key="pk", sort_key="sk", stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES
        )
        # Reconciliation's reads: the succeeded refunds, by when they succeeded (only refund items have a
        # status, so the index holds nothing else; functions/reconciliation/records_store.py).
        self.table.add_global_secondary_index(
            index_name=REFUNDS.index,
            partition_key=dynamodb.Attribute(name="status", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="updated_at", type=dynamodb.AttributeType.STRING),
        )
        self.refund_queue = MonitoredQueue(
            self,
            "RefundQueue",
            visibility_timeout=QUEUE_VISIBILITY,
            alarm_topic=alarm_topic,
            max_receive_count=PSP_WORKER_MAX_RECEIVE_COUNT,
        )
        # A refund's movement waits here, by age, for its order's credit (a restore for its debit).
        self.wallet_refunds_queue = wallet_wait_queue(self, "WalletRefundsQueue", alarm_topic=alarm_topic)
        self.dispatch_failures = MonitoredQueue(
            self, "DispatchFailures", visibility_timeout=QUEUE_VISIBILITY, alarm_topic=alarm_topic
        )
        self.orphan_failures = MonitoredQueue(
            self, "OrphanRefundFailures", visibility_timeout=QUEUE_VISIBILITY, alarm_topic=alarm_topic
        )

    def connect(self, *, pay_in: PayIn, psp_base_url: str) -> None:
        """The refund service's functions, on the pay-in path's tables and queues."""
        self._api(pay_in)
        self._dispatcher()
        self._executor(pay_in, psp_base_url)
        self._wallet(pay_in)
        self._orphans(pay_in)

    def _api(self, pay_in: PayIn) -> None:
        self.api = ServiceFunction(
            self,
            "RefundApi",
            handler="functions.refund.api.api_handler",
            settings_model=RefundApiSettings,
            service_name="refund",
            description="Refunds API: accept refunds (idempotent) within what is left of a charge, read refunds.",
            refunds_table=self.table.table_name,
            idempotency_table=pay_in.idempotency_table.table_name,
            executor_table=pay_in.executor_table.table_name,
            payments_table=pay_in.payments_table.table_name,
        )
        function = self.api.function
        # The reservation transaction (refund put + the charge's conditional update) and its reads.
        grant_items(
            self.table,
            function,
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
        )
        pay_in.idempotency_table.grant_read_write_data(function)
        grant_items(pay_in.executor_table, function, "dynamodb:GetItem")
        grant_items(pay_in.payments_table, function, "dynamodb:GetItem")

    def _dispatcher(self) -> None:
        self.dispatcher = ServiceFunction(
            self,
            "RefundDispatcher",
            handler="functions.refund.handler.dispatch_handler",
            settings_model=RefundDispatcherSettings,
            service_name="refund-dispatcher",
            description="Transactional outbox: each stored refund to the refund queue, each debited refund's "
            "wallet movements to the wallet.",
            refund_queue_url=self.refund_queue.queue.queue_url,
            wallet_refunds_queue_url=self.wallet_refunds_queue.queue.queue_url,
        )
        self.refund_queue.queue.grant_send_messages(self.dispatcher.function)
        self.wallet_refunds_queue.queue.grant_send_messages(self.dispatcher.function)
        self.dispatcher.function.add_event_source(
            sources.DynamoEventSource(
                self.table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=50,
                bisect_batch_on_error=True,
                retry_attempts=_STREAM_RETRIES,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.dispatch_failures.queue),
                # New refunds, and changes of refunds the PSP succeeded (debited): the charges' totals and the
                # other transitions are filtered out.
                filters=[
                    lambda_.FilterCriteria.filter(
                        {
                            "eventName": lambda_.FilterRule.is_equal("INSERT"),
                            "dynamodb": {"NewImage": {"sk": {"S": lambda_.FilterRule.is_equal(REFUND_SK)}}},
                        }
                    ),
                    lambda_.FilterCriteria.filter(
                        {
                            "eventName": lambda_.FilterRule.is_equal("MODIFY"),
                            "dynamodb": {
                                "NewImage": {
                                    "sk": {"S": lambda_.FilterRule.is_equal(REFUND_SK)},
                                    "debited": {"BOOL": lambda_.FilterRule.is_equal(True)},
                                }
                            },
                        }
                    ),
                ],
            )
        )

    def _executor(self, pay_in: PayIn, psp_base_url: str) -> None:
        self.executor = ServiceFunction(
            self,
            "RefundExecutor",
            handler="functions.refund.handler.executor_handler",
            settings_model=RefundExecutorSettings,
            service_name="refund-executor",
            description="Asks the PSP for each refund once (idempotency key = refund_id) and records its verdict.",
            timeout=WORKER_TIMEOUT,
            refunds_table=self.table.table_name,
            wallet_refunds_queue_url=self.wallet_refunds_queue.queue.queue_url,
            psp_base_url=psp_base_url,
            psp_api_key_secret=psp_api_key_secret(self).secret_arn,
            dead_letter_queue_url=self.refund_queue.dlq.queue_url,
            circuit_table=pay_in.psp_circuit_table.table_name,
        )
        function = self.executor.function
        psp_api_key_secret(self).grant_read(function)
        grant_psp_worker(
            self.executor, queue=self.refund_queue, circuit_table=pay_in.psp_circuit_table, alarm_topic=self.alarm_topic
        )
        # Conditional transitions of the refund, and the failure's transaction with the charge's total.
        grant_items(self.table, function, "dynamodb:GetItem", "dynamodb:UpdateItem")
        self.wallet_refunds_queue.queue.grant_send_messages(function)
        function.add_event_source(sqs_source(self.refund_queue.queue))

    def _wallet(self, pay_in: PayIn) -> None:
        self.wallet = ServiceFunction(
            self,
            "WalletRefunds",
            handler="functions.wallet.refund_handler.handler",
            settings_model=WalletRefundSettings,
            service_name="wallet-refunds",
            description="Debits each succeeded refund from its seller's wallet once (restores a failed one), "
            "then hands its journal to the ledger.",
            wallet_table=pay_in.wallet_table.table_name,
            ledger_postings_queue_url=pay_in.ledger_postings_queue.queue.queue_url,
            dead_letter_queue_url=self.wallet_refunds_queue.dlq.queue_url,
        )
        function = self.wallet.function
        # The wallet's own item actions, as its credit function holds them: never Scan, Delete or an index.
        grant_items(
            pay_in.wallet_table,
            function,
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:GetItem",
            "dynamodb:Query",
        )
        pay_in.ledger_postings_queue.queue.grant_send_messages(function)
        self.wallet_refunds_queue.grant_backoff(function)
        function.add_event_source(sqs_source(self.wallet_refunds_queue.queue))

    def _orphans(self, pay_in: PayIn) -> None:
        self.orphans = ServiceFunction(
            self,
            "OrphanRefunds",
            handler="functions.refund.handler.orphan_handler",
            settings_model=OrphanRefundSettings,
            service_name="refund-orphans",
            description="Refunds each orphan charge (charged by the PSP for an order decided FAILED) once.",
            refunds_table=self.table.table_name,
        )
        function = self.orphans.function
        grant_items(
            self.table,
            function,
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
        )
        function.add_event_source(
            sources.DynamoEventSource(
                pay_in.executor_table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=50,
                bisect_batch_on_error=True,
                retry_attempts=_STREAM_RETRIES,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.orphan_failures.queue),
                # Only orders that carry an orphan charge (executor.store.record_orphan) wake it.
                filters=[
                    lambda_.FilterCriteria.filter(
                        {"dynamodb": {"NewImage": {"orphan_psp_reference": {"S": lambda_.FilterRule.exists()}}}}
                    )
                ],
            )
        )

    def grant_webhooks(self, receiver: lambda_.IFunction) -> None:
        """The PSP webhooks' refund verdicts: the refund's conditional transitions, and the wallet's hand-off."""
        grant_items(self.table, receiver, "dynamodb:GetItem", "dynamodb:UpdateItem")
        self.wallet_refunds_queue.queue.grant_send_messages(receiver)

    def grant_refunded_amounts(self, reader: lambda_.IFunction) -> None:
        """The payments API's order view: each order's refunded amount."""
        grant_items(self.table, reader, "dynamodb:BatchGetItem")
