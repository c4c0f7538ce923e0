"""The payout provider, a service of its own beside the pay-in PSP: its API key (the payout executor sends
it), its webhook signing secret, and the public route its signed webhooks arrive on
(functions/payout_webhooks), which confirms payouts to the waiting saga."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions.payout_webhooks.domain import EVENT_KEY_PREFIX
from functions.payout_webhooks.settings import PayoutWebhookSettings
from infra.config import stage_config
from infra.constructs.alarms import alarm_on_service_metric
from infra.constructs.encryption import encryption_key
from infra.constructs.function import ServiceFunction
from infra.constructs.psp_webhooks import webhook_signing_secret
from infra.constructs.table_access import grant_items
from infra.nag import acknowledge

API_KEY_ROTATION_REASON = (
    "The payout provider issues and rotates its API key in its own console; an operator stores the new value "
    "(docs/DEPLOY.md) - a rotation Lambda could not create a key the provider accepts."
)


class PayoutProvider(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stage = stage_config(self).stage
        data_key = encryption_key(self, "Data")
        # Stored once per stage by an operator (docs/DEPLOY.md); until then the generated placeholder is
        # refused by the provider, and payouts wait and retry (their DLQ and circuit alarms page someone).
        self.api_key = secretsmanager.Secret(
            self,
            "ApiKey",
            description=f"Payments ({stage}): the payout provider's API key the payout executor sends",
            encryption_key=data_key,
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=48),
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(self.api_key, "AwsSolutions-SMG4", API_KEY_ROTATION_REASON)
        self.signing_secret = webhook_signing_secret(self, sender="Payout provider")
        stack = Stack.of(self)
        CfnOutput(
            stack,
            "PayoutProviderApiKeySecretArn",
            value=self.api_key.secret_arn,
            description="Put the payout provider's API key here (docs/DEPLOY.md)",
        )
        CfnOutput(
            stack,
            "PayoutProviderSigningSecretArn",
            value=self.signing_secret.secret_arn,
            description="The payout provider's webhook signing secret (docs/DEPLOY.md)",
        )

    def receive_webhooks(
        self,
        *,
        payout_executions_table: dynamodb.ITable,
        events_table: dynamodb.ITable,
        saga: sfn.IStateMachine,
        alarm_topic: sns.ITopic,
    ) -> ServiceFunction:
        """The webhook receiver: it verifies the provider's signature, dedupes by event id in the webhook event
        log (its keys prefixed), and records each payment's verdict on the payout's execution item."""
        receiver = ServiceFunction(
            self,
            "Webhooks",
            handler="functions.payout_webhooks.handler.handler",
            settings_model=PayoutWebhookSettings,
            service_name="payout-webhooks",
            description="Payout provider webhooks: verify the signature, dedupe by event id, confirm payouts.",
            payouts_table=payout_executions_table.table_name,
            events_table=events_table.table_name,
            secret_arn=self.signing_secret.secret_arn,
        )
        function = receiver.function
        # record_outcome / mark_answered on the payout's item; the dedupe log: is_done, mark_done.
        grant_items(payout_executions_table, function, "dynamodb:GetItem", "dynamodb:UpdateItem")
        # Its event ids only (the PSP's receiver shares the log): it can never mark a PSP event done.
        grant_items(events_table, function, "dynamodb:GetItem", "dynamodb:PutItem", key_prefix=EVENT_KEY_PREFIX)
        self.signing_secret.grant_read(function)
        saga.grant_task_response(function)
        alarm_on_service_metric(
            self,
            "VerdictConflictAlarm",
            metric_name="PayoutWebhooksConflict",
            service=receiver.service_name,
            period=Duration.minutes(5),
            description="The payout provider sent a verdict that contradicts the one recorded for a payout (paid "
            "after failed: the seller may have the money twice; failed after paid: a bank return), or one for "
            "another payment than ours. Nothing was changed: look at the payout and the provider's payment now.",
            alarm_topic=alarm_topic,
        )
        return receiver
