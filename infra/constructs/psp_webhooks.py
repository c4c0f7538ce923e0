"""The PSP's webhooks (functions/psp_webhooks): a public route whose signature authenticates the PSP.
It settles pending charges on the executor's table and refunds, and hands dispute notices on, so its
internet-facing role holds only the item actions it uses. (Payouts are confirmed by the payout provider's
own webhooks: infra/constructs/payout_provider.py.)"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.psp_webhooks.settings import PspWebhookSettings
from infra.constructs.encryption import encryption_key
from infra.constructs.function import ServiceFunction
from infra.constructs.pay_in import PayIn
from infra.constructs.refunds import Refunds
from infra.constructs.table_access import grant_items
from infra.constructs.tables import expiring_table
from infra.nag import acknowledge

SECRET_ROTATION_REASON = (
    "The PSP issues and rotates the webhook signing secret in its dashboard; rotation here means storing "
    "the new value next to the old one (the verifier accepts every value) - a rotation Lambda could not "
    "create a secret the PSP accepts."
)


def webhook_signing_secret(scope: Construct, *, sender: str) -> secretsmanager.Secret:
    """A sender's webhook signing secrets (`SigningSecret`): a JSON object of every currently valid secret,
    generated as a placeholder the operator replaces with the sender's, on the stack's Data key."""
    secret = secretsmanager.Secret(
        scope,
        "SigningSecret",
        description=f"{sender} webhook signing secrets: a JSON object of every currently valid secret",
        generate_secret_string=secretsmanager.SecretStringGenerator(
            secret_string_template="{}", generate_string_key="current", exclude_punctuation=True
        ),
        encryption_key=encryption_key(scope, "Data"),
        removal_policy=RemovalPolicy.RETAIN,
    )
    acknowledge(secret, "AwsSolutions-SMG4", SECRET_ROTATION_REASON)
    return secret


class PspWebhooks(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pay_in: PayIn,
        refunds: Refunds,
        disputes_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.signing_secret = webhook_signing_secret(self, sender="PSP")
        self.events_table = expiring_table(self, "EventsTable", partition_key="event_id", ttl_attribute="expires_at")
        self.function = ServiceFunction(
            self,
            "Function",
            handler="functions.psp_webhooks.handler.handler",
            settings_model=PspWebhookSettings,
            service_name="psp-webhooks",
            description="PSP webhooks: verify the signature, dedupe by event id, settle orders and refunds.",
            orders_table=pay_in.executor_table.table_name,
            events_table=self.events_table.table_name,
            secret_arn=self.signing_secret.secret_arn,
            wallet_queue_url=pay_in.wallet_queue.queue.queue_url,
            order_status_queue_url=pay_in.order_status_queue.queue.queue_url,
            disputes_queue_url=disputes_queue.queue_url,
            refunds_table=refunds.table.table_name,
            wallet_refunds_queue_url=refunds.wallet_refunds_queue.queue.queue_url,
        )
        receiver = self.function.function
        # find + conditional decide (re-read when the condition fails); no Scan, no index, no delete.
        grant_items(pay_in.executor_table, receiver, "dynamodb:GetItem", "dynamodb:UpdateItem")
        # the dedupe log: is_done, mark_done.
        grant_items(self.events_table, receiver, "dynamodb:GetItem", "dynamodb:PutItem")
        self.signing_secret.grant_read(receiver)
        pay_in.wallet_queue.queue.grant_send_messages(receiver)
        pay_in.order_status_queue.queue.grant_send_messages(receiver)
        disputes_queue.grant_send_messages(receiver)
        refunds.grant_webhooks(receiver)
