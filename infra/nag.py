"""cdk-nag acknowledgements: each on the resource it applies to, with its reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
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


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


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
    """Findings that come from AWS service constraints or CDK internals, wherever they occur."""
    for construct in stack.node.find_all():
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
