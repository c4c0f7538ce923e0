"""Settlement files: the bucket the PSP's nightly file lands in, its S3 -> SQS notification, the
reconciliation function and its run table."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.reconciliation.settings import ReconciliationApiSettings, ReconciliationSettings
from infra.constructs.encryption import encryption_key
from infra.constructs.function import ServiceFunction
from infra.constructs.pay_in import money_table, sqs_source
from infra.constructs.queue import MonitoredQueue
from infra.nag import acknowledge_bucket_prefix

SETTLEMENT_PREFIX = "settlements/"
REPORT_PREFIX = "reports/"
RECONCILIATION_TIMEOUT = Duration.minutes(15)


class Settlement(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, alarm_topic: sns.ITopic, executor_table: dynamodb.ITable
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(400))],
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            # The stack's Data key; an S3 Bucket Key keeps KMS requests (and cost) per object low.
            encryption=s3.BucketEncryption.KMS,
            encryption_key=encryption_key(self, "Data"),
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="settlement/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.notifications = MonitoredQueue(
            self,
            "FileQueue",
            visibility_timeout=Duration.seconds(RECONCILIATION_TIMEOUT.to_seconds() * 6),
            alarm_topic=alarm_topic,
            max_message_age=Duration.hours(2),
        )
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.notifications.queue),
            s3.NotificationKeyFilter(prefix=SETTLEMENT_PREFIX),
        )
        self.runs_table = money_table(self, "RunsTable", partition_key="run_id")
        self.function = ServiceFunction(
            self,
            "Reconciliation",
            handler="functions.reconciliation.handler.handler",
            settings_model=ReconciliationSettings,
            service_name="reconciliation",
            description="Reconciles the PSP's settlement file against executed orders.",
            timeout=RECONCILIATION_TIMEOUT,
            memory_size=1024,
            runs_table=self.runs_table.table_name,
            executor_table=executor_table.table_name,
            report_prefix=REPORT_PREFIX,
        )
        self.function.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[self.bucket.arn_for_objects(f"{SETTLEMENT_PREFIX}*")],
            )
        )
        self.function.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[self.bucket.arn_for_objects(f"{REPORT_PREFIX}*")])
        )
        acknowledge_bucket_prefix(self.function.role, self.bucket, SETTLEMENT_PREFIX)
        acknowledge_bucket_prefix(self.function.role, self.bucket, REPORT_PREFIX)
        self.runs_table.grant_read_write_data(self.function.function)
        executor_table.grant_read_data(self.function.function)
        self.function.function.add_event_source(sqs_source(self.notifications.queue))
        self.api = ServiceFunction(
            self,
            "ReconciliationApi",
            handler="functions.reconciliation.handler.api_handler",
            settings_model=ReconciliationApiSettings,
            service_name="reconciliation-api",
            description="Reads reconciliation runs.",
            runs_table=self.runs_table.table_name,
        )
        self.runs_table.grant_read_data(self.api.function)
