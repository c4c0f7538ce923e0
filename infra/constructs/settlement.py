"""Settlement files: the bucket the PSP's nightly file lands in, its S3 -> SQS notification, the
reconciliation function (stream path), the Distributed Map for large files with its row worker, the
settlements table (claims, temporary breaks, per-row outcomes), the review queue and the run table.

Large files (above DISTRIBUTED_THRESHOLD_BYTES, or marked with x-amz-meta-reconcile-mode=distributed):

  Rows (Distributed Map, ItemReader = the CSV in S3, header from the first row)
    item: {run_id, line = index + 2, row}  ->  RowsQueue .waitForTaskToken  ->  row worker (Lambda):
          classify + claim + post, store the outcome, SendTaskSuccess
  Finalize: FileQueue <- {"type": "finalize", run_id}  ->  reconciliation function: fold the outcomes,
            find missing orders, reports, review, run record
  any failure: FileQueue <- {"type": "map_failed", run_id, error}  ->  the run is FAILED with the cause
  (functions/reconciliation/messages.py has the file queue's message models)

Only service integrations (S3 reader, SQS) run in the definition, so moto executes it locally.

Rows of every type are matched against their records: charges against the executor's orders, payouts
(and refunds and disputes, when their tables are passed in) against their services' tables, read only
(BatchGetItem, and Query on the one index of settled records). A scheduled check (hourly) marks a day
whose file has not arrived by PAYMENTS_SETTLEMENT_DEADLINE_HOUR (UTC) the next day MISSING, and alarms."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from functions.reconciliation.records_store import DISPUTES_OPENED, DISPUTES_WON, PAYOUTS, REFUNDS
from functions.reconciliation.settings import (
    ReconciliationApiSettings,
    ReconciliationSettings,
    SettlementDeadlineSettings,
)
from functions.reconciliation.store import AWAITING_INDEX
from infra.constructs.alarms import alarm_on_service_metric, run_on_schedule
from infra.constructs.encryption import encryption_key
from infra.constructs.function import ServiceFunction
from infra.constructs.pay_in import sqs_source
from infra.constructs.queue import MonitoredQueue
from infra.constructs.table_access import grant_items
from infra.constructs.tables import money_table
from infra.nag import (
    DISTRIBUTED_MAP_REASON,
    SFN_LOGS_REASON,
    acknowledge,
    acknowledge_bucket_prefix,
    acknowledge_checkov,
    acknowledge_kms_grants,
    acknowledge_matching,
    acknowledge_table_indexes,
)

SETTLEMENT_PREFIX = "settlements/"
REPORT_PREFIX = "reports/"
RECONCILIATION_TIMEOUT = Duration.minutes(15)
ROW_WORKER_TIMEOUT = Duration.seconds(60)
ROW_TASK_TIMEOUT = Duration.hours(1)
MAP_CONCURRENCY = 100
DEADLINE_SERVICE = "settlement-deadline"
ACCESS_LOG_BUCKET_REASON = (
    "This is the access-log bucket: it receives the settlement bucket's server access logs, and logging its "
    "own access into itself would log every log delivery."
)


class SettlementFileReader(sfn.S3CsvItemReader):
    """CDK's CSV item reader grants s3:GetObject on every object of its bucket (the key arrives at run time);
    this one only on the settlement files, the one prefix the state machine is started for."""

    def __init__(self, *, bucket: s3.IBucket, prefix: str, key: str, csv_headers: sfn.CsvHeaders) -> None:
        super().__init__(bucket=bucket, key=key, csv_headers=csv_headers)
        self._objects = bucket.arn_for_objects(f"{prefix}*")

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return [iam.PolicyStatement(actions=["s3:GetObject"], resources=[self._objects])]


class Settlement(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_topic: sns.ITopic,
        executor_table: dynamodb.Table,
        ledger_postings_queue: MonitoredQueue,
        payouts_table: dynamodb.ITable,
        schedule_failures: sqs.IQueue,
        refunds_table: dynamodb.ITable | None = None,
        disputes_table: dynamodb.ITable | None = None,
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
        acknowledge_checkov(self.access_logs, "CKV_AWS_18", ACCESS_LOG_BUCKET_REASON)
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
        # order#<id>/claim: the order's settlement (settled by a row, or an open missing_external break);
        # run#<id>/line#<n>: a distributed run's per-row outcome. Sparse index: temporary breaks awaiting
        # the next file, and escalated ones under the run that escalated them.
        self.settlements_table = money_table(self, "SettlementsTable", partition_key="pk", sort_key="sk")
        self.settlements_table.add_global_secondary_index(
            index_name=AWAITING_INDEX,
            partition_key=dynamodb.Attribute(name="awaiting", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="decided_at", type=dynamodb.AttributeType.STRING),
        )
        # Breaks a person has to look at; read by the operations tooling, alarmed when they sit a day.
        self.review_queue = MonitoredQueue(
            self,
            "ReviewQueue",
            visibility_timeout=Duration.minutes(5),
            alarm_topic=alarm_topic,
            max_message_age=Duration.days(1),
        )
        self.rows_queue = MonitoredQueue(
            self,
            "RowsQueue",
            visibility_timeout=Duration.seconds(ROW_WORKER_TIMEOUT.to_seconds() * 6),
            alarm_topic=alarm_topic,
        )
        self.state_machine = self._large_file_state_machine()

        settings: dict[str, Any] = {
            "runs_table": self.runs_table.table_name,
            "settlements_table": self.settlements_table.table_name,
            "executor_table": executor_table.table_name,
            "report_prefix": REPORT_PREFIX,
            "review_queue_url": self.review_queue.queue.queue_url,
            "ledger_postings_queue_url": ledger_postings_queue.queue.queue_url,
            "state_machine_arn": self.state_machine.state_machine_arn,
            "payouts_table": payouts_table.table_name,
            "refunds_table": refunds_table.table_name if refunds_table is not None else "",
            "disputes_table": disputes_table.table_name if disputes_table is not None else "",
        }
        self.function = ServiceFunction(
            self,
            "Reconciliation",
            handler="functions.reconciliation.handler.handler",
            settings_model=ReconciliationSettings,
            service_name="reconciliation",
            description="Reconciles the PSP's settlement file against executed orders.",
            timeout=RECONCILIATION_TIMEOUT,
            memory_size=1024,
            **settings,
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
        self.review_queue.queue.grant_send_messages(self.function.function)
        self.state_machine.grant_start_execution(self.function.function)
        self.function.function.add_event_source(sqs_source(self.notifications.queue))

        self.rows = ServiceFunction(
            self,
            "ReconciliationRows",
            handler="functions.reconciliation.handler.rows_handler",
            settings_model=ReconciliationSettings,
            service_name="reconciliation-rows",
            description="Reconciles a batch of a large settlement file's rows for the Distributed Map.",
            timeout=ROW_WORKER_TIMEOUT,
            **settings,
        )
        self.state_machine.grant_task_response(self.rows.function)
        # its run record says whose file the rows are from (the PSP's or the payout provider's)
        grant_items(self.runs_table, self.rows.function, "dynamodb:GetItem")
        self.rows.function.add_event_source(sqs_source(self.rows_queue.queue))

        for worker in (self.function, self.rows):
            self.settlements_table.grant_read_write_data(worker.function)
            executor_table.grant_read_data(worker.function)
            ledger_postings_queue.queue.grant_send_messages(worker.function)
            acknowledge_table_indexes(worker.role, self.settlements_table)
            acknowledge_table_indexes(worker.role, executor_table)
            acknowledge_kms_grants(worker.role)
        # The other row types' records: each row worker batch-reads them; the file function also queries
        # the index of settled ones for those the file does not carry (missing_external).
        record_tables = [(payouts_table, [PAYOUTS.index])]
        if refunds_table is not None:
            record_tables.append((refunds_table, [REFUNDS.index]))
        if disputes_table is not None:
            record_tables.append((disputes_table, [DISPUTES_OPENED.index, DISPUTES_WON.index]))
        for records_table, indexes in record_tables:
            grant_items(records_table, self.function.function, "dynamodb:BatchGetItem", query_indexes=indexes)
            grant_items(records_table, self.rows.function, "dynamodb:BatchGetItem")
        self._deadline_check(alarm_topic=alarm_topic, schedule_failures=schedule_failures)

        self.api = ServiceFunction(
            self,
            "ReconciliationApi",
            handler="functions.reconciliation.api.api_handler",
            settings_model=ReconciliationApiSettings,
            service_name="reconciliation-api",
            description="Reads reconciliation runs.",
            runs_table=self.runs_table.table_name,
        )
        self.runs_table.grant_read_data(self.api.function)

    def _deadline_check(self, *, alarm_topic: sns.ITopic, schedule_failures: sqs.IQueue) -> None:
        """Hourly: a day whose file has not arrived by the deadline is MISSING (a record in the runs table)
        and the SettlementFileMissing metric is 1 (alarmed) until the file comes."""
        self.deadline = ServiceFunction(
            self,
            "Deadline",
            handler="functions.reconciliation.handler.deadline_handler",
            settings_model=SettlementDeadlineSettings,
            service_name=DEADLINE_SERVICE,
            description="Marks a settlement day MISSING when its file has not arrived by the deadline.",
            runs_table=self.runs_table.table_name,
            settlement_bucket=self.bucket.bucket_name,
            settlement_prefix=SETTLEMENT_PREFIX,
            dead_letter_queue=schedule_failures,
        )
        check = self.deadline.function
        grant_items(self.runs_table, check, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")
        # Listing one day's folder of settlement files: nothing else of the bucket, and no object's content.
        check.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{SETTLEMENT_PREFIX}*"]}},
            )
        )
        acknowledge_kms_grants(self.deadline.role)
        self.deadline_rule = run_on_schedule(
            self,
            "DeadlineSchedule",
            function=check,
            schedule=events.Schedule.cron(minute="15"),
            description="Check that yesterday's settlement file arrived by the deadline",
        )
        alarm_on_service_metric(
            self,
            "FileMissingAlarm",
            metric_name="SettlementFileMissing",
            service=DEADLINE_SERVICE,
            period=Duration.hours(1),
            description="No settlement file arrived for a day by its deadline: the day is MISSING.",
            alarm_topic=alarm_topic,
        )

    def _large_file_state_machine(self) -> sfn.StateMachine:
        S = sfn.JsonPath.string_at
        report_failure = tasks.SqsSendMessage(
            self,
            "ReportMapFailure",
            queue=self.notifications.queue,
            message_body=sfn.TaskInput.from_object(
                {"type": "map_failed", "run_id": S("$.run_id"), "error": sfn.JsonPath.object_at("$.error")}
            ),
        )
        rows = sfn.DistributedMap(
            self,
            "Rows",
            item_reader=SettlementFileReader(
                bucket=self.bucket, prefix=SETTLEMENT_PREFIX, key=S("$.key"), csv_headers=sfn.CsvHeaders.use_first_row()
            ),
            # A row's line number: the header is line 1. (In AWS an ItemBatcher of ~500 rows per task
            # would cut state transitions; moto 5.2's ASL parser does not know ItemBatcher yet.)
            item_selector={
                "run_id": S("$.run_id"),
                "line": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$$.Map.Item.Index"), 2),
                "row": sfn.JsonPath.object_at("$$.Map.Item.Value"),
            },
            max_concurrency=MAP_CONCURRENCY,
            map_execution_type=sfn.StateMachineType.STANDARD,
            result_path=sfn.JsonPath.DISCARD,
        )
        rows.item_processor(
            tasks.SqsSendMessage(
                self,
                "ReconcileRow",
                queue=self.rows_queue.queue,
                integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
                message_body=sfn.TaskInput.from_object(
                    {
                        "run_id": S("$.run_id"),
                        "line": sfn.JsonPath.number_at("$.line"),
                        "row": sfn.JsonPath.object_at("$.row"),
                        "task_token": sfn.JsonPath.task_token,
                    }
                ),
                task_timeout=sfn.Timeout.duration(ROW_TASK_TIMEOUT),
            )
        )
        rows.add_catch(report_failure, errors=["States.ALL"], result_path="$.error")
        finalize = tasks.SqsSendMessage(
            self,
            "Finalize",
            queue=self.notifications.queue,
            message_body=sfn.TaskInput.from_object({"type": "finalize", "run_id": S("$.run_id")}),
        )
        log_group = logs.LogGroup(self, "LargeFileLogs", retention=logs.RetentionDays.ONE_YEAR)
        machine = sfn.StateMachine(
            self,
            "LargeFileReconciliation",
            definition_body=sfn.DefinitionBody.from_chainable(rows.next(finalize)),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.hours(24),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        acknowledge(machine.role, "AwsSolutions-IAM5[Resource::*]", SFN_LOGS_REASON)
        acknowledge_kms_grants(machine.role)
        acknowledge_bucket_prefix(machine.role, self.bucket, SETTLEMENT_PREFIX)
        # CDK's DistributedMapPolicy (a child of the state machine) grants on this machine's own executions:
        # <machine>:* and <machine>/*:*, in this region and account, however those render.
        machine_id = Stack.of(self).get_logical_id(machine.node.default_child)  # type: ignore[arg-type]
        name = re.escape('{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"' + machine_id + '"}]}]}')
        acknowledge_matching(
            machine.node.find_child("DistributedMapPolicy"),
            "AwsSolutions-IAM5",
            rf"Resource::arn:<AWS::Partition>:states:(<AWS::Region>|[a-z0-9-]+):(<AWS::AccountId>|\d{{12}})"
            rf":execution:{name}(:\*|/\*:\*)",
            DISTRIBUTED_MAP_REASON,
        )
        return machine
