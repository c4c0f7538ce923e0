"""Item-level table grants, for roles that must not hold `grant_read_write_data`'s whole set (Scan,
DeleteItem, BatchWriteItem, every index): only the named item actions on the table itself, Query on the
named indexes only, and the table's KMS key for what they read and write."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam

# What DynamoDB needs of a caller on a table encrypted with a customer-managed key (as CDK grants it).
TABLE_KEY_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*")


def grant_items(
    table: dynamodb.ITable,
    grantee: iam.IGrantable,
    *actions: str,
    query_indexes: Sequence[str] = (),
    key_prefix: str | None = None,
) -> None:
    """`key_prefix`: the item actions only on items whose partition key starts with it (a table shared by
    two writers, each in its own namespace)."""
    if actions:  # none: a role that only queries the named indexes
        conditions = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{key_prefix}*"]}} if key_prefix else None
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(actions), resource_arns=[table.table_arn], conditions=conditions
        )
    if query_indexes:
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["dynamodb:Query"],
            resource_arns=[f"{table.table_arn}/index/{index}" for index in query_indexes],
        )
    if table.encryption_key is not None:
        table.encryption_key.grant(grantee, *TABLE_KEY_ACTIONS)
