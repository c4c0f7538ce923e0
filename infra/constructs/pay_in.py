"""The pay-in path: payment service (API, outbox dispatcher, order progress), executor, wallet, ledger,
chained by SQS queues each with a DLQ."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.common import decided_index
from functions.executor.settings import ExecutorSettings
from functions.executor.store import OPEN_INDEX
from functions.ledger import balances as ledger_balances
from functions.ledger.settings import LedgerApiSettings, LedgerPostingsSettings, LedgerSettings
from functions.ledger.store import BY_ACCOUNT_INDEX, BY_PAYMENT_ORDER_INDEX
from functions.payment.settings import DispatcherSettings, OrderStatusSettings, PaymentApiSettings
from functions.payment.store import PAYMENT_SK
from functions.psp.circuit_store import KEY as CIRCUIT_KEY
from functions.psp.circuit_store import TTL_ATTRIBUTE as CIRCUIT_TTL
from functions.psp.settings import default_retry_policy
from functions.wallet import keys as wallet_keys
from functions.wallet.settings import WalletApiSettings, WalletSettings, default_wallet_wait_policy
from infra.config import stage_config
from infra.constructs.alarms import ON_ANY_OCCURRENCE
from infra.constructs.encryption import psp_api_key_secret
from infra.constructs.function import ServiceFunction
from infra.constructs.queue import MonitoredQueue
from infra.constructs.table_access import grant_items
from infra.constructs.tables import expiring_table, money_table
from infra.nag import acknowledge_table_indexes

WORKER_TIMEOUT = Duration.seconds(30)
# AWS's guidance: a queue's visibility timeout at least 6x its consumer's timeout.
QUEUE_VISIBILITY = Duration.seconds(WORKER_TIMEOUT.to_seconds() * 6)
# The PSP's contracted request rate bounds the executor's copies: per stage, infra/config.py.
# Every SQS event source mapping caps its function's copies (ScalingConfig) instead of reserved concurrency,
# whose throttled receives would count toward maxReceiveCount (docs/DEPLOY.md, Concurrency).
CONSUMER_MAX_CONCURRENCY = 20
# How long the order-status worker's event source gathers a batch (see its mapping below).
ORDER_STATUS_BATCHING_WINDOW = Duration.seconds(1)
# The queues of the PSP workers retry a transient failure by age (functions/common/backoff.py): their
# maxReceiveCount is only a backstop, never reached before the age check dead-letters a message.
PSP_WORKER_MAX_RECEIVE_COUNT = default_retry_policy().worst_case_receives()
# The wallet's holds and refunds workers wait, by age, for a credit (or a refund's debit) that travels on
# another queue (functions/wallet/settings.py): their queues keep a message a day past its maximum age, so
# that the worker's age check, never SQS's retention, ends its retries; maxReceiveCount is a backstop again.
WALLET_WAIT_POLICY = default_wallet_wait_policy()
WALLET_WAIT_MAX_RECEIVE_COUNT = WALLET_WAIT_POLICY.worst_case_receives()
WALLET_WAIT_RETENTION = Duration.seconds(WALLET_WAIT_POLICY.max_age_seconds).plus(Duration.days(1))


def sqs_source(
    queue: sqs.IQueue, max_concurrency: int = CONSUMER_MAX_CONCURRENCY, batching_window: Duration | None = None
) -> sources.SqsEventSource:
    return sources.SqsEventSource(
        queue,
        batch_size=10,
        report_batch_item_failures=True,
        max_concurrency=max_concurrency,
        max_batching_window=batching_window,
    )


def wallet_wait_queue(scope: Construct, construct_id: str, *, alarm_topic: sns.ITopic) -> MonitoredQueue:
    """The queue of a wallet worker that waits, by age, for a message on another queue. Its age alarm keeps
    the usual 15 minutes: a record normally waits seconds for its credit, and longer is worth a page."""
    return MonitoredQueue(
        scope,
        construct_id,
        visibility_timeout=QUEUE_VISIBILITY,
        alarm_topic=alarm_topic,
        max_receive_count=WALLET_WAIT_MAX_RECEIVE_COUNT,
        retention_period=WALLET_WAIT_RETENTION,
    )


def grant_psp_worker(
    worker: ServiceFunction, *, queue: MonitoredQueue, circuit_table: dynamodb.ITable, alarm_topic: sns.ITopic
) -> None:
    """What a queue worker that calls the PSP needs besides its own grants: ChangeMessageVisibility on its
    queue (backoff; also in the event source's consume grant), SendMessage to its dead-letter queue (a
    message past its age, or poison), and the circuit's item (read, conditional put); and an alarm while
    the circuit is open."""
    function = worker.function
    queue.grant_backoff(function)
    grant_items(circuit_table, function, "dynamodb:GetItem", "dynamodb:PutItem")
    cloudwatch.Metric(
        namespace="Payments",
        metric_name="PspCircuitOpen",
        dimensions_map={"service": worker.service_name},
        statistic="Maximum",
        period=Duration.minutes(1),
    ).create_alarm(
        worker,
        "PspCircuitOpenAlarm",
        evaluation_periods=1,
        **ON_ANY_OCCURRENCE,
        alarm_description=f"The circuit breaker of {worker.service_name} is open or probing: the service it "
        "calls (the PSP, or the payout provider) is failing or slow, and calls fail fast; work is retried with "
        "backoff, nothing is failed for it.",
    ).add_alarm_action(cw_actions.SnsAction(alarm_topic))


class PayIn(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_topic: sns.ITopic,
        psp_base_url: str,
        refunds_table: dynamodb.ITable,
        wallet_holds_queue: sqs.IQueue,
    ) -> None:
        """`refunds_table`: the refund service's, read by the payments API for each order's amount_refunded;
        `wallet_holds_queue`: the wallet's holds worker's, where the payments API sends fulfilled orders."""
        super().__init__(scope, construct_id)

        def queue(name: str) -> MonitoredQueue:
            return MonitoredQueue(self, name, visibility_timeout=QUEUE_VISIBILITY, alarm_topic=alarm_topic)

        self.executor_queue = MonitoredQueue(
            self,
            "ExecutorQueue",
            visibility_timeout=QUEUE_VISIBILITY,
            alarm_topic=alarm_topic,
            max_receive_count=PSP_WORKER_MAX_RECEIVE_COUNT,
        )
        self.wallet_queue = queue("WalletQueue")
        self.ledger_queue = queue("LedgerQueue")
        # AWS's guidance for a batching window: visibility at least 6x the timeout plus the window.
        self.order_status_queue = MonitoredQueue(
            self,
            "OrderStatusQueue",
            visibility_timeout=QUEUE_VISIBILITY.plus(ORDER_STATUS_BATCHING_WINDOW),
            alarm_topic=alarm_topic,
        )
        # Balanced journals from any service (settlement, payouts); the ledger books each once.
        self.ledger_postings_queue = queue("LedgerPostingsQueue")

        # the executor's orders (first: the payments API reads them, to confirm fulfilments)
        # Its stream: the refund service refunds every orphan charge recorded here (infra/constructs/refunds.py).
        self.executor_table = money_table(
            self, "ExecutorTable", partition_key="payment_order_id", stream=dynamodb.StreamViewType.NEW_IMAGE
        )
        # Sparse: only undecided orders carry open_bucket, so the recovery job reads just those.
        self.executor_table.add_global_secondary_index(
            index_name=OPEN_INDEX,
            partition_key=dynamodb.Attribute(name="open_bucket", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="open_since", type=dynamodb.AttributeType.STRING),
        )
        # Sparse: only succeeded orders, by decision hour in shards, for reconciliation (see decided_index).
        self.executor_table.add_global_secondary_index(
            index_name=decided_index.INDEX,
            partition_key=dynamodb.Attribute(name=decided_index.ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=decided_index.SORT_KEY, type=dynamodb.AttributeType.STRING),
        )
        # Sparse: only failed orders, the same layout, for the money auditor (functions/auditor).
        self.executor_table.add_global_secondary_index(
            index_name=decided_index.FAILED_INDEX,
            partition_key=dynamodb.Attribute(name=decided_index.FAILED_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=decided_index.SORT_KEY, type=dynamodb.AttributeType.STRING),
        )

        # payment service
        self.payments_table = money_table(
            self, "PaymentsTable", partition_key="pk", sort_key="sk", stream=dynamodb.StreamViewType.NEW_IMAGE
        )
        # Powertools' idempotency records (key "id", expiry "expiration")
        self.idempotency_table = expiring_table(
            self, "IdempotencyTable", partition_key="id", ttl_attribute="expiration"
        )
        self.payment_api = ServiceFunction(
            self,
            "PaymentApi",
            handler="functions.payment.api.api_handler",
            settings_model=PaymentApiSettings,
            service_name="payment",
            description="Payments API: accept checkouts (idempotent), read payments, confirm fulfilments.",
            payments_table=self.payments_table.table_name,
            idempotency_table=self.idempotency_table.table_name,
            refunds_table=refunds_table.table_name,
            executor_table=self.executor_table.table_name,
            wallet_holds_queue_url=wallet_holds_queue.queue_url,
        )
        self.payments_table.grant_read_write_data(self.payment_api.function)
        grant_items(refunds_table, self.payment_api.function, "dynamodb:BatchGetItem")
        self.idempotency_table.grant_read_write_data(self.payment_api.function)
        # Fulfilment: the order as charged (held? succeeded?) by key, and the release request to the wallet.
        grant_items(self.executor_table, self.payment_api.function, "dynamodb:GetItem")
        wallet_holds_queue.grant_send_messages(self.payment_api.function)

        self.dispatch_dlq = MonitoredQueue(
            self, "DispatchFailures", visibility_timeout=QUEUE_VISIBILITY, alarm_topic=alarm_topic
        )
        self.dispatcher = ServiceFunction(
            self,
            "Dispatcher",
            handler="functions.payment.handler.dispatch_handler",
            settings_model=DispatcherSettings,
            service_name="payment-dispatcher",
            description="Transactional outbox: sends each stored payment's orders to the executor queue.",
            executor_queue_url=self.executor_queue.queue.queue_url,
        )
        self.executor_queue.queue.grant_send_messages(self.dispatcher.function)
        self.dispatcher.function.add_event_source(
            sources.DynamoEventSource(
                self.payments_table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=50,
                bisect_batch_on_error=True,
                retry_attempts=50,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.dispatch_dlq.queue),
                # Only new payments wake the dispatcher: guard items and status updates are filtered
                # out by Lambda before invocation (and are not billed).
                filters=[
                    lambda_.FilterCriteria.filter(
                        {
                            "eventName": lambda_.FilterRule.is_equal("INSERT"),
                            "dynamodb": {"NewImage": {"sk": {"S": lambda_.FilterRule.is_equal(PAYMENT_SK)}}},
                        }
                    )
                ],
            )
        )

        self.order_status = ServiceFunction(
            self,
            "OrderStatus",
            handler="functions.payment.handler.order_status_handler",
            settings_model=OrderStatusSettings,
            service_name="payment-status",
            description="Folds order progress (charged, credited, booked) into the payment's status.",
            payments_table=self.payments_table.table_name,
        )
        self.payments_table.grant_read_write_data(self.order_status.function)
        # A checkout's orders report to one payment item, from three workers, within about a second: a
        # batching window lets the worker fold them into one write (functions/payment/handler.py).
        self.order_status.function.add_event_source(
            sqs_source(self.order_status_queue.queue, batching_window=ORDER_STATUS_BATCHING_WINDOW)
        )

        # executor (its orders' table is above)
        # The PSP circuit breaker's shared state, one small item per circuit (functions/psp/circuit_store.py):
        # a table of its own, so that the payout executor needs no grant on pay-in orders, and the state,
        # which expires, stays out of the money tables and their backups.
        self.psp_circuit_table = expiring_table(
            self, "PspCircuitTable", partition_key=CIRCUIT_KEY, ttl_attribute=CIRCUIT_TTL
        )
        self.executor = ServiceFunction(
            self,
            "Executor",
            handler="functions.executor.handler.handler",
            settings_model=ExecutorSettings,
            service_name="executor",
            description="Charges each payment order once at the PSP (idempotency key = payment_order_id).",
            timeout=WORKER_TIMEOUT,
            orders_table=self.executor_table.table_name,
            wallet_queue_url=self.wallet_queue.queue.queue_url,
            order_status_queue_url=self.order_status_queue.queue.queue_url,
            psp_base_url=psp_base_url,
            psp_api_key_secret=psp_api_key_secret(self).secret_arn,
            dead_letter_queue_url=self.executor_queue.dlq.queue_url,
            circuit_table=self.psp_circuit_table.table_name,
        )
        psp_api_key_secret(self).grant_read(self.executor.function)
        grant_psp_worker(
            self.executor, queue=self.executor_queue, circuit_table=self.psp_circuit_table, alarm_topic=alarm_topic
        )
        self.executor_table.grant_read_write_data(self.executor.function)
        acknowledge_table_indexes(self.executor.role, self.executor_table)
        self.wallet_queue.queue.grant_send_messages(self.executor.function)
        self.order_status_queue.queue.grant_send_messages(self.executor.function)
        self.executor.function.add_event_source(
            sqs_source(self.executor_queue.queue, max_concurrency=stage_config(self).executor_concurrency)
        )

        # wallet
        self.wallet_table = money_table(self, "WalletTable", partition_key="seller_id", sort_key="sk")
        # Sparse: the balances that may be due a payout, per currency (functions/wallet/keys.py).
        self.wallet_table.add_global_secondary_index(
            index_name=wallet_keys.PAYOUT_DUE_INDEX,
            partition_key=dynamodb.Attribute(name=wallet_keys.PAYOUT_DUE_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=wallet_keys.PARTITION_KEY, type=dynamodb.AttributeType.STRING),
        )
        # Sparse: the held orders, by the day their hold ends (functions/wallet/keys.py). Keys only: the hourly
        # sweep reads just each hold's seller_id and sk from it, and the release reads the hold by its key.
        self.wallet_table.add_global_secondary_index(
            index_name=wallet_keys.HOLD_DUE_INDEX,
            partition_key=dynamodb.Attribute(name=wallet_keys.HOLD_DUE_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=wallet_keys.RELEASE_AFTER_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        self.wallet = ServiceFunction(
            self,
            "Wallet",
            handler="functions.wallet.handler.handler",
            settings_model=WalletSettings,
            service_name="wallet",
            description="Credits each charged order to its seller's wallet once.",
            wallet_table=self.wallet_table.table_name,
            ledger_queue_url=self.ledger_queue.queue.queue_url,
            fulfilment_hold_days=stage_config(self).fulfilment_hold_days,
        )
        # Item actions on the table only: the credit transaction and its reads, never Scan, Delete or an index.
        grant_items(
            self.wallet_table,
            self.wallet.function,
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:GetItem",
            "dynamodb:Query",
        )
        self.ledger_queue.queue.grant_send_messages(self.wallet.function)
        self.wallet.function.add_event_source(sqs_source(self.wallet_queue.queue))
        self.wallet_api = ServiceFunction(
            self,
            "WalletApi",
            handler="functions.wallet.api.api_handler",
            settings_model=WalletApiSettings,
            service_name="wallet-api",
            description="Reads sellers' wallet balances.",
            wallet_table=self.wallet_table.table_name,
        )
        grant_items(self.wallet_table, self.wallet_api.function, "dynamodb:GetItem", "dynamodb:Query")

        # ledger
        self.ledger_table = money_table(self, "LedgerTable", partition_key="entry_id")
        for index, key in ((BY_ACCOUNT_INDEX, "account"), (BY_PAYMENT_ORDER_INDEX, "payment_order_id")):
            self.ledger_table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=key, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.STRING),
            )
        # One balance record per account and currency, moved in the transaction that appends the entries.
        self.ledger_balances_table = money_table(
            self, "LedgerBalancesTable", partition_key=ledger_balances.PARTITION_KEY, sort_key=ledger_balances.SORT_KEY
        )
        self.ledger = ServiceFunction(
            self,
            "Ledger",
            handler="functions.ledger.handler.handler",
            settings_model=LedgerSettings,
            service_name="ledger",
            description="Appends balanced double-entry journals (append-only).",
            ledger_table=self.ledger_table.table_name,
            balances_table=self.ledger_balances_table.table_name,
            order_status_queue_url=self.order_status_queue.queue.queue_url,
        )
        # Append-only by IAM: Put (conditional) and reads, never UpdateItem or DeleteItem.
        self.ledger_table.grant(
            self.ledger.function,
            "dynamodb:PutItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:GetItem",
            "dynamodb:Query",
        )
        # The balance records are updated, never deleted, and only inside the appending transaction.
        self.ledger_balances_table.grant(self.ledger.function, "dynamodb:UpdateItem")
        self.order_status_queue.queue.grant_send_messages(self.ledger.function)
        self.ledger.function.add_event_source(sqs_source(self.ledger_queue.queue))
        self.ledger_postings = ServiceFunction(
            self,
            "LedgerPostings",
            handler="functions.ledger.handler.postings_handler",
            settings_model=LedgerPostingsSettings,
            service_name="ledger-postings",
            description="Books balanced journals sent by other services (append-only).",
            ledger_table=self.ledger_table.table_name,
            balances_table=self.ledger_balances_table.table_name,
        )
        # GetItem: a journal id that arrives again is compared with what it holds.
        self.ledger_table.grant(
            self.ledger_postings.function, "dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem"
        )
        self.ledger_balances_table.grant(self.ledger_postings.function, "dynamodb:UpdateItem")
        self.ledger_postings.function.add_event_source(sqs_source(self.ledger_postings_queue.queue))
        self.ledger_api = ServiceFunction(
            self,
            "LedgerApi",
            handler="functions.ledger.api.api_handler",
            settings_model=LedgerApiSettings,
            service_name="ledger-api",
            description="Reads ledger entries and the trial balance.",
            ledger_table=self.ledger_table.table_name,
            balances_table=self.ledger_balances_table.table_name,
        )
        self.ledger_table.grant_read_data(self.ledger_api.function)
        self.ledger_balances_table.grant_read_data(self.ledger_api.function)
        acknowledge_table_indexes(self.ledger.role, self.ledger_table)
        acknowledge_table_indexes(self.ledger_api.role, self.ledger_table)
        acknowledge_table_indexes(self.ledger_postings.role, self.ledger_table)
