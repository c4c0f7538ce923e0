"""Customer-managed KMS keys and the PSP's secrets, one set per stack.

Three keys, so a key's policy names only the services that need it:
- `Data`: the money tables, the idempotency table, the settlement bucket, the PSP secrets and every
  function's environment (no service principal in its policy);
- `Messages`: every SQS queue and dead-letter queue and the alarm topic (S3 may use it to deliver
  settlement-file notifications, CloudWatch to publish alarms);
- `Logs`: every log group (CloudWatch Logs of this region may use it for this account's log groups
  only: logs carry payment and seller ids).
All rotate yearly and are retained when the stack is deleted (data encrypted under a deleted key is
lost). Constructs reach them with `encryption_key(scope, purpose)`, so every table, queue and bucket
helper encrypts without threading keys through constructor arguments; `grant_*` calls then add the
kms: actions a role needs, on this key only."""

from __future__ import annotations

from typing import Literal

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import stage_config
from infra.nag import PSP_SECRET_ROTATION_REASON, acknowledge, acknowledge_kms_grants

Purpose = Literal["Data", "Messages", "Logs"]
PURPOSES: dict[Purpose, str] = {
    "Data": "payments data at rest: DynamoDB tables, the settlement bucket, PSP secrets, function environments",
    "Messages": "payments messages at rest: SQS queues, dead-letter queues, the alarm topic",
    "Logs": "payments logs at rest: function, API access and state machine log groups",
}
# The actions CloudWatch Logs needs on a log group's key (its documented key policy).
LOGS_KEY_ACTIONS = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
CONSTRUCT_ID = "Encryption"


class Encryption(Construct):
    def __init__(self, scope: Construct, construct_id: str = CONSTRUCT_ID) -> None:
        super().__init__(scope, construct_id)
        stage = stage_config(self).stage
        self.keys: dict[Purpose, kms.Key] = {
            purpose: kms.Key(
                self,
                f"{purpose}Key",
                description=f"Payments ({stage}): {text}",
                enable_key_rotation=True,
                rotation_period=Duration.days(365),
                pending_window=Duration.days(30),
                alias=f"alias/payments/{stage}/{purpose.lower()}",
                removal_policy=RemovalPolicy.RETAIN,
            )
            for purpose, text in PURPOSES.items()
        }
        stack = Stack.of(self)
        # CloudWatch Logs encrypts and decrypts log events itself (writers need no grant): only for log
        # groups of this account and region, which it names in the encryption context.
        self.keys["Logs"].add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsForThisAccountsLogGroups",
                # The regional principal; the app targets the `aws` partition (cdk.json).
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=LOGS_KEY_ACTIONS,
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        # CloudWatch alarms publish to the alarm topic, which is encrypted with this key.
        self.keys["Messages"].add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsToTheAlarmTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        # The PSP issues the key (in its dashboard); an operator stores it here once per stage:
        #   aws secretsmanager put-secret-value --secret-id <PspApiKeySecretArn> --secret-string sk_live_...
        # Until then the generated placeholder is refused by the PSP, and the executor retries (never fails
        # an order for it) while the DLQ and error alarms page someone.
        self.psp_api_key = secretsmanager.Secret(
            self,
            "PspApiKey",
            description=f"Payments ({stage}): the PSP API key the executor sends as a bearer token",
            encryption_key=self.keys["Data"],
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=48),
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(self.psp_api_key, "AwsSolutions-SMG4", PSP_SECRET_ROTATION_REASON)
        CfnOutput(
            Stack.of(self),
            "PspApiKeySecretArn",
            value=self.psp_api_key.secret_arn,
            description="Put the PSP's API key here (docs/DEPLOY.md)",
        )

    @classmethod
    def of(cls, scope: Construct) -> Encryption:
        """The stack's keys and secrets (created on first use)."""
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(CONSTRUCT_ID)
        if existing is None:
            return cls(stack)
        if not isinstance(existing, Encryption):
            raise TypeError(f"{stack.node.path}/{CONSTRUCT_ID} is not the stack's Encryption construct")
        return existing


def encryption_key(scope: Construct, purpose: Purpose) -> kms.Key:
    return Encryption.of(scope).keys[purpose]


def field_key(scope: Construct, construct_id: str, *, holds: str, alias_name: str) -> kms.Key:
    """A key of its own for one kind of secret field that a function seals itself (webhook signing secrets,
    bank account numbers): its grants name only the functions that seal or open that field."""
    stage = stage_config(scope).stage
    return kms.Key(
        scope,
        construct_id,
        description=f"Payments ({stage}): {holds}",
        enable_key_rotation=True,
        rotation_period=Duration.days(365),
        pending_window=Duration.days(30),
        alias=f"alias/payments/{stage}/{alias_name}",
        removal_policy=RemovalPolicy.RETAIN,
    )


def psp_api_key_secret(scope: Construct) -> secretsmanager.Secret:
    return Encryption.of(scope).psp_api_key


def encrypt_log_groups(scope: Construct) -> None:
    """Every log group in the stack on the Logs key, wherever it was created (functions, the API's access
    log, state machines): run last, once the stack holds them all."""
    stack = Stack.of(scope)
    key = encryption_key(stack, "Logs")
    for group in (c for c in stack.node.find_all() if isinstance(c, logs.LogGroup)):
        resource = group.node.default_child
        if not isinstance(resource, logs.CfnLogGroup):
            raise TypeError(f"{group.node.path} has no CloudFormation log group")
        resource.kms_key_id = key.key_arn


def grant_data_key_to_state_machines(scope: Construct) -> None:
    """State machines read and write money tables through DynamoDB service integrations, whose CDK tasks
    grant the table actions but not the table's KMS key: give each state machine in the stack the key."""
    stack = Stack.of(scope)
    key = encryption_key(stack, "Data")
    for machine in (c for c in stack.node.find_all() if isinstance(c, sfn.StateMachine)):
        key.grant_encrypt_decrypt(machine)
        acknowledge_kms_grants(machine.role)
