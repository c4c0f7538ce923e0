"""The two security judges' acknowledgements, each on the resource it applies to, with its reason:
cdk-nag's (construct metadata, read when synthesis validates) and Checkov's (`Metadata.checkov.skip` on
the resource in the template, read by `checkov -f <template>`)."""

from __future__ import annotations

import re
from typing import Any

import jsii
from aws_cdk import Acknowledgment, Aspects, CfnResource, IAspect, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

XRAY_REASON = (
    "X-Ray's PutTraceSegments/PutTelemetryRecords (and, for DynamoDB stream consumers, "
    "dynamodb:ListStreams) support no resource-level permissions; '*' is the only valid resource."
)
KMS_ACTIONS_REASON = (
    "Added by CDK's grant_* for the stack's customer-managed key: kms:GenerateDataKey* and kms:ReEncrypt* "
    "are the envelope-encryption action families SQS, DynamoDB and S3 use on the caller's behalf; the "
    "resource is that one key's ARN, never '*'."
)
KMS_ACTION_FAMILIES = ("kms:GenerateDataKey*", "kms:ReEncrypt*")
INDEX_REASON = "The resource is this table's own global secondary indexes (<table arn>/index/*), needed by Query."
S3_PREFIX_REASON = "Object-level access limited to one key prefix of the bucket."
API_KEY_REASON = (
    "Server-to-server API for the marketplace backend: API keys with a usage plan identify "
    "the caller; there are no end users to authenticate with Cognito or IAM."
)
SFN_LOGS_REASON = (
    "Step Functions log delivery (logs:CreateLogDelivery, DescribeResourcePolicies, ...) and "
    "X-Ray support only '*' as resource."
)
APIGW_LOGS_REASON = (
    "AmazonAPIGatewayPushToCloudWatchLogs is the AWS-provided role API Gateway needs, once per "
    "account and region, to write access and execution logs."
)
PSP_SECRET_ROTATION_REASON = (
    "The PSP issues and revokes its API keys in its own dashboard; Secrets Manager cannot rotate them "
    "with a Lambda. Operators roll the key at the PSP and put the new value here (docs/DEPLOY.md); the "
    "executor re-reads it within five minutes (Powertools parameters cache)."
)
NOTIFICATIONS_REASON = (
    "CDK's own singleton function that applies the S3 bucket notification configuration "
    "at deploy time; it is not part of the payment path."
)
DISTRIBUTED_MAP_REASON = (
    "A Distributed Map runs its items as child executions of this same state machine: these are "
    "the executions of this one state machine, whose names are generated at run time."
)

# Checkov (CKV_AWS_*): why a check does not apply to a resource.
NO_VPC_REASON = (
    "No private resources to reach: every dependency (DynamoDB, SQS, S3, Secrets Manager, Step Functions, the "
    "PSP's public HTTPS API) is an AWS or internet endpoint reached over TLS with IAM; a VPC would add NAT "
    "gateways (cost, a single egress path) and cold-start latency for no isolation gained."
)
DLQ_REASONS = {
    "sqs": "Invoked by an SQS event source mapping: its queue's redrive policy sends a message that keeps "
    "failing to that queue's DLQ (alarmed); a Lambda DLQ applies to asynchronous invocations only.",
    "stream": "Invoked by a DynamoDB stream event source mapping whose on-failure destination is a queue "
    "(alarmed); a Lambda DLQ applies to asynchronous invocations only.",
    "api": "Invoked synchronously by API Gateway: the caller (a client, or the PSP for webhooks) gets the error "
    "response and retries; a Lambda DLQ applies to asynchronous invocations only.",
}
CONCURRENCY_REASONS = {
    "sqs": "Invoked by an SQS event source mapping whose maximum concurrency (ScalingConfig) caps its copies; "
    "reserved concurrency would throttle receives, and throttled receives count toward maxReceiveCount, "
    "sending messages to the DLQ unprocessed (docs/DEPLOY.md, Concurrency).",
    "stream": "Invoked by a DynamoDB stream event source mapping: one concurrent batch per stream shard bounds "
    "its copies.",
    "api": "Invoked by API Gateway, whose stage and usage plan throttle requests (apiRateLimit, apiBurstLimit): "
    "a reserved limit would turn bursts into 5xx errors instead of 429s and take capacity from the account.",
    "schedule": "Started by a daily EventBridge schedule; a run (at most 15 minutes) ends long before the next, "
    "so a reservation would only take capacity from the account's pool.",
}
NOTIFICATIONS_CHECKS = {
    "CKV_AWS_115": "CDK's deploy-time helper that applies the settlement bucket's notification configuration; "
    "CloudFormation invokes it once per deployment that changes the bucket.",
    "CKV_AWS_116": "CDK's deploy-time helper: CloudFormation invokes it and fails (and rolls back) the "
    "deployment if it fails, so there is nothing to dead-letter.",
    "CKV_AWS_117": "CDK's deploy-time helper calls only the S3 API (PutBucketNotificationConfiguration); it "
    "reaches no private resource.",
}


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


@jsii.implements(IAspect)
class _AcknowledgeMatching:
    """At synthesis, asks cdk-nag for `rule`'s findings on each resource under the construct and
    acknowledges those whose text matches the pattern (cdk-nag itself matches finding ids exactly)."""

    def __init__(self, rule: str, pattern: re.Pattern[str], reason: str) -> None:
        self.rule, self.pattern, self.reason = rule, pattern, reason

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource):
            return
        for violation in AwsSolutionsChecks().validate_scope(node).violations:
            name = violation.rule_name
            if name.startswith(f"{self.rule}[") and self.pattern.fullmatch(name[len(self.rule) + 1 : -1]):
                acknowledge(node, name, self.reason)


def acknowledge_matching(construct: IConstruct, rule: str, pattern: str, reason: str) -> None:
    """Acknowledges each finding of `rule` (e.g. AwsSolutions-IAM5) on the construct's resources whose text
    (e.g. `Resource::arn:...`) fully matches the regular expression: one acknowledgement holds whether the
    region and account render as tokens (`<AWS::Region>`) or as a deployment's concrete values."""
    Aspects.of(construct).add(_AcknowledgeMatching(rule, re.compile(pattern), reason))


def acknowledge_checkov(construct: IConstruct, check: str, reason: str) -> None:
    """A Checkov check (CKV_AWS_*) that does not apply to this resource, and why: written into the resource's
    own template metadata (`Metadata.checkov.skip`), where Checkov reads it."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource for {check}")
    skips: list[dict[str, str]] = list((resource.get_metadata("checkov") or {}).get("skip", []))
    if any(skip["id"] == check for skip in skips):
        raise ValueError(f"{resource.node.path}: {check} is already acknowledged")
    resource.add_metadata("checkov", {"skip": [*skips, {"id": check, "comment": reason}]})


INVOKERS = {"apigateway.amazonaws.com": "api", "events.amazonaws.com": "schedule"}


def function_triggers(function: lambda_.Function, invokers: dict[str, set[str]]) -> set[str]:
    """How a function is invoked, from what the stack wires to it: its event source mappings (a stream
    mapping has a starting position, an SQS one has none) and the services whose invoke permissions name
    it (`invokers`: function ARN token -> principals)."""
    triggers = {INVOKERS.get(principal, principal) for principal in invokers.get(function.function_arn, set())}
    for child in function.node.children:
        if isinstance(child, lambda_.EventSourceMapping):
            mapping: Any = child.node.default_child
            triggers.add("sqs" if mapping.starting_position is None else "stream")
    return triggers


def _acknowledge_function_checks(function: lambda_.Function, invokers: dict[str, set[str]]) -> None:
    resource: Any = function.node.default_child
    triggers = function_triggers(function, invokers)
    if not triggers or triggers - set(CONCURRENCY_REASONS):
        raise ValueError(f"{function.node.path}: invoked by {sorted(triggers)}; no reviewed reasons for that")
    acknowledge_checkov(resource, "CKV_AWS_117", NO_VPC_REASON)
    # Asynchronous invocations (schedules) get a real DLQ; the others' failures land elsewhere.
    if "schedule" not in triggers:
        acknowledge_checkov(resource, "CKV_AWS_116", " ".join(DLQ_REASONS[t] for t in sorted(triggers)))
    if resource.reserved_concurrent_executions is None:
        acknowledge_checkov(resource, "CKV_AWS_115", " ".join(CONCURRENCY_REASONS[t] for t in sorted(triggers)))


def acknowledge_kms_grants(construct: IConstruct) -> None:
    for action in KMS_ACTION_FAMILIES:
        acknowledge(construct, f"AwsSolutions-IAM5[Action::{action}]", KMS_ACTIONS_REASON)


def acknowledge_table_indexes(construct: IConstruct, table: dynamodb.Table) -> None:
    logical_id = Stack.of(table).get_logical_id(table.node.default_child)  # type: ignore[arg-type]
    acknowledge(construct, f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/index/*]", INDEX_REASON)


def acknowledge_bucket_prefix(construct: IConstruct, bucket: s3.Bucket, prefix: str) -> None:
    logical_id = Stack.of(bucket).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
    acknowledge(construct, f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{prefix}*]", S3_PREFIX_REASON)


def acknowledge_stack_wide(stack: Stack) -> None:
    """Findings that come from AWS service constraints or CDK internals, wherever they occur, and Checkov's
    function checks, decided by how each function is invoked."""
    constructs = stack.node.find_all()
    invokers: dict[str, set[str]] = {}
    for permission in (c for c in constructs if isinstance(c, lambda_.CfnPermission)):
        invokers.setdefault(permission.function_name, set()).add(permission.principal)
    for construct in constructs:
        path = construct.node.path
        if isinstance(construct, apigw.CfnMethod):
            acknowledge(construct, "AwsSolutions-APIG4", API_KEY_REASON)
            acknowledge(construct, "AwsSolutions-COG4", API_KEY_REASON)
        elif path.endswith("/Api/CloudWatchRole"):
            acknowledge(
                construct,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                APIGW_LOGS_REASON,
            )
        elif "BucketNotificationsHandler" in path and path.endswith("/Role"):
            acknowledge(
                construct,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                NOTIFICATIONS_REASON,
            )
        elif (
            "BucketNotificationsHandler" in path
            and isinstance(construct, CfnResource)
            and construct.cfn_resource_type == "AWS::Lambda::Function"
        ):
            for check, reason in NOTIFICATIONS_CHECKS.items():
                acknowledge_checkov(construct, check, reason)
        elif isinstance(construct, lambda_.Function):
            _acknowledge_function_checks(construct, invokers)
