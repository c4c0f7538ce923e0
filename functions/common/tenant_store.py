"""DynamoDB adapter for the tenants table: one item per tenant (`tenant#<id>`, so an id is taken once)
and one per API key (`key#<api key id>` → its tenant). A key's tenant never changes, so readers may
cache the answer for the life of their process."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions.common.aws import client
from functions.common.dynamo import cancellation_codes, table
from functions.common.tenants import Tenant

PARTITION_KEY = "pk"
TENANT_PREFIX = "tenant#"
KEY_PREFIX = "key#"


class TenantExists(Exception):
    """A tenant with this id is already registered."""


class KeyRegistered(Exception):
    """The API key already belongs to another tenant (a key's tenant never changes)."""


class DynamoTenantDirectory:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def tenant_of_key(self, api_key_id: str) -> str | None:
        item = (
            table(self.table_name)
            .get_item(Key={PARTITION_KEY: KEY_PREFIX + api_key_id}, ConsistentRead=True)
            .get("Item")
        )
        return None if item is None else str(item["tenant_id"])

    def register(self, tenant: Tenant, api_key_id: str) -> None:
        """The tenant and its first key, both or neither; an id or key registered before is refused, unless
        it is this very registration again (a retry after a lost answer)."""
        created = tenant.created_at.isoformat()
        try:
            client("dynamodb").transact_write_items(
                TransactItems=[
                    _put(self.table_name, TENANT_PREFIX + tenant.tenant_id, tenant.tenant_id, created),
                    _put(self.table_name, KEY_PREFIX + api_key_id, tenant.tenant_id, created),
                ]
            )
        except ClientError as error:
            codes = cancellation_codes(error)
            if "ConditionalCheckFailed" not in codes:
                raise  # e.g. a conflicting registration in flight: the caller tries again
            if self.tenant_of_key(api_key_id) == tenant.tenant_id and codes[0] == "ConditionalCheckFailed":
                return  # both items are this registration's: it committed before
            if codes[0] == "ConditionalCheckFailed":
                raise TenantExists(tenant.tenant_id) from error
            raise KeyRegistered(api_key_id) from error

    def tenants(self) -> list[Tenant]:
        found = client("dynamodb").get_paginator("scan").paginate(TableName=self.table_name, ConsistentRead=True)
        return sorted(
            (
                Tenant(tenant_id=item["tenant_id"]["S"], created_at=item["created_at"]["S"])
                for page in found
                for item in page["Items"]
                if item[PARTITION_KEY]["S"].startswith(TENANT_PREFIX)
            ),
            key=lambda tenant: tenant.tenant_id,
        )


def _put(table_name: str, key: str, tenant_id: str, created_at: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table_name,
            "Item": {PARTITION_KEY: {"S": key}, "tenant_id": {"S": tenant_id}, "created_at": {"S": created_at}},
            "ConditionExpression": f"attribute_not_exists({PARTITION_KEY})",
        }
    }
