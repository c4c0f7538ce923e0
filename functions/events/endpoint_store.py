"""DynamoDB adapter for the webhook endpoints table: key (tenant_id, endpoint_id), so a tenant's endpoints
are one Query, and another tenant's id is simply not found."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from functions.common.dynamo import is_condition_failure, items, plain, table
from functions.events.endpoints import Endpoint

PARTITION_KEY = "tenant_id"
SORT_KEY = "endpoint_id"


def endpoint_of(item: dict[str, Any]) -> Endpoint:
    values = plain(item)
    ciphertext = values["secret_ciphertext"]
    # boto3 reads binary attributes as its Binary wrapper
    values["secret_ciphertext"] = bytes(getattr(ciphertext, "value", ciphertext))
    return Endpoint.model_validate(values)


class DynamoEndpointStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def insert(self, endpoint: Endpoint) -> bool:
        try:
            table(self.table_name).put_item(Item=endpoint.model_dump(), ConditionExpression=Attr(SORT_KEY).not_exists())
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def get(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        item = (
            table(self.table_name)
            .get_item(Key={PARTITION_KEY: tenant_id, SORT_KEY: endpoint_id}, ConsistentRead=True)
            .get("Item")
        )
        return None if item is None else endpoint_of(item)

    def list(self, tenant_id: str) -> list[Endpoint]:
        found = items(self.table_name, KeyConditionExpression=Key(PARTITION_KEY).eq(tenant_id), ConsistentRead=True)
        return [endpoint_of(item) for item in found]

    def delete(self, tenant_id: str, endpoint_id: str) -> bool:
        try:
            table(self.table_name).delete_item(
                Key={PARTITION_KEY: tenant_id, SORT_KEY: endpoint_id}, ConditionExpression=Attr(SORT_KEY).exists()
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True
