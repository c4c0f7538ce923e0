"""The payments stack: thin; each capability is one construct."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.api import PaymentsApi, Route
from infra.constructs.auditor import Auditor
from infra.constructs.disputes import Disputes
from infra.constructs.encryption import encrypt_log_groups, encryption_key, grant_data_key_to_state_machines
from infra.constructs.events import Events
from infra.constructs.holds import FulfilmentHolds
from infra.constructs.monitoring import Monitoring
from infra.constructs.pay_in import PayIn
from infra.constructs.payout_provider import PayoutProvider
from infra.constructs.payouts import Payouts
from infra.constructs.psp_webhooks import PspWebhooks
from infra.constructs.queue_policy import deny_queue_requests_without_tls
from infra.constructs.recovery import Recovery
from infra.constructs.refund_sweep import RefundSweep
from infra.constructs.refunds import Refunds
from infra.constructs.sellers import Sellers
from infra.constructs.settlement import Settlement
from infra.nag import acknowledge_table_indexes


class PaymentsStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        psp_base_url: str,
        payout_provider_url: str,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.alarm_topic = sns.Topic(
            self,
            "Alarms",
            display_name="Payments alarms",
            enforce_ssl=True,
            master_key=encryption_key(self, "Messages"),
        )
        self.refunds = Refunds(self, "Refunds", alarm_topic=self.alarm_topic)
        self.holds = FulfilmentHolds(self, "Holds", alarm_topic=self.alarm_topic)
        self.pay_in = PayIn(
            self,
            "PayIn",
            alarm_topic=self.alarm_topic,
            psp_base_url=psp_base_url,
            refunds_table=self.refunds.table,
            wallet_holds_queue=self.holds.queue.queue,
        )
        self.refunds.connect(pay_in=self.pay_in, psp_base_url=psp_base_url)
        self.sellers = Sellers(self, "Sellers")
        self.payout_provider = PayoutProvider(self, "PayoutProvider")
        self.payouts = Payouts(
            self,
            "Payouts",
            alarm_topic=self.alarm_topic,
            pay_in=self.pay_in,
            sellers=self.sellers,
            provider=self.payout_provider,
            payout_provider_url=payout_provider_url,
        )
        self.holds.connect(pay_in=self.pay_in, schedule_failures=self.payouts.schedule_failures.queue)
        self.disputes = Disputes(self, "Disputes", alarm_topic=self.alarm_topic, pay_in=self.pay_in)
        self.settlement = Settlement(
            self,
            "Settlement",
            alarm_topic=self.alarm_topic,
            executor_table=self.pay_in.executor_table,
            ledger_postings_queue=self.pay_in.ledger_postings_queue,
            payouts_table=self.payouts.payouts_table,
            schedule_failures=self.payouts.schedule_failures.queue,
            refunds_table=self.refunds.table,
            disputes_table=self.disputes.table,
        )
        self.psp_webhooks = PspWebhooks(
            self,
            "PspWebhooks",
            pay_in=self.pay_in,
            refunds=self.refunds,
            disputes_queue=self.disputes.queue.queue,
        )
        self.payout_webhooks = self.payout_provider.receive_webhooks(
            payout_executions_table=self.payouts.payout_executions_table,
            events_table=self.psp_webhooks.events_table,
            saga=self.payouts.saga.state_machine,
            alarm_topic=self.alarm_topic,
        )
        self.recovery = Recovery(
            self,
            "Recovery",
            alarm_topic=self.alarm_topic,
            pay_in=self.pay_in,
            schedule_failures=self.payouts.schedule_failures.queue,
            psp_base_url=psp_base_url,
        )
        self.refund_sweep = RefundSweep(
            self,
            "RefundSweep",
            alarm_topic=self.alarm_topic,
            refunds=self.refunds,
            schedule_failures=self.payouts.schedule_failures.queue,
            psp_base_url=psp_base_url,
        )
        self.events = Events(
            self,
            "Events",
            alarm_topic=self.alarm_topic,
            source_tables={
                "payments": self.pay_in.payments_table,
                "payouts": self.payouts.payouts_table,
                "refunds": self.refunds.table,
                "disputes": self.disputes.table,
            },
        )
        # After every queue: it watches each one's dead-letter queue.
        self.auditor = Auditor(
            self,
            "Auditor",
            alarm_topic=self.alarm_topic,
            pay_in=self.pay_in,
            schedule_failures=self.payouts.schedule_failures.queue,
            psp_base_url=psp_base_url,
            refunds_table=self.refunds.table,
        )
        # The executor table's recovery index makes read grants on it cover <table>/index/*.
        acknowledge_table_indexes(self.settlement.function.role, self.pay_in.executor_table)
        payment_api = self.pay_in.payment_api.function
        self.api = PaymentsApi(
            self,
            "PublicApi",
            stage_name=stage,
            routes=[
                Route("POST", "/v1/payments", payment_api),
                Route("GET", "/v1/payments/{payment_id}", payment_api),
                Route("POST", "/v1/payment-orders/{payment_order_id}/fulfil", payment_api),
                Route("GET", "/v1/wallets/{seller_id}", self.pay_in.wallet_api.function),
                Route("GET", "/v1/ledger/entries", self.pay_in.ledger_api.function),
                Route("GET", "/v1/ledger/trial-balance", self.pay_in.ledger_api.function),
                Route("GET", "/v1/reconciliations", self.settlement.api.function),
                Route("GET", "/v1/reconciliations/{run_id}", self.settlement.api.function),
                Route("POST", "/v1/payouts", self.payouts.api.function),
                Route("GET", "/v1/payouts/{payout_id}", self.payouts.api.function),
                Route("PUT", "/v1/sellers/{seller_id}/payout-account", self.sellers.api.function),
                Route("GET", "/v1/sellers/{seller_id}", self.sellers.api.function),
                Route("POST", "/v1/webhook-endpoints", self.events.api.function),
                Route("GET", "/v1/webhook-endpoints", self.events.api.function),
                Route("DELETE", "/v1/webhook-endpoints/{endpoint_id}", self.events.api.function),
                Route("GET", "/v1/events", self.events.api.function),
                Route("GET", "/v1/disputes", self.disputes.api.function),
                Route("GET", "/v1/disputes/{dispute_id}", self.disputes.api.function),
                Route("POST", "/v1/refunds", self.refunds.api.function),
                Route("GET", "/v1/refunds/{refund_id}", self.refunds.api.function),
                Route(
                    "POST",
                    "/v1/webhooks/psp",
                    self.psp_webhooks.function.function,
                    api_key_required=False,
                    unkeyed_reason="The PSP calls this route without our API key: the handler verifies the PSP's "
                    "HMAC signature over the timestamp and raw body on every request and rejects it otherwise; "
                    "WAF and the stage throttle still apply.",
                ),
                Route(
                    "POST",
                    "/v1/webhooks/payout-provider",
                    self.payout_webhooks.function,
                    api_key_required=False,
                    unkeyed_reason="The payout provider calls this route without our API key: the handler "
                    "verifies the provider's HMAC signature (its own secret) over the timestamp and raw body on "
                    "every request and rejects it otherwise; WAF and the stage throttle still apply.",
                ),
            ],
        )
        # Last, as they cover everything above: the tables' key for state machines, every log group on
        # the Logs key, every queue refusing requests without TLS, dashboard and alarms.
        grant_data_key_to_state_machines(self)
        encrypt_log_groups(self)
        deny_queue_requests_without_tls(self)
        self.monitoring = Monitoring(self, "Monitoring", alarm_topic=self.alarm_topic)
        CfnOutput(self, "ApiUrl", value=self.api.api.url)
        CfnOutput(self, "ApiKeyId", value=self.api.api_key.key_id)
        CfnOutput(self, "SettlementBucketName", value=self.settlement.bucket.bucket_name)
