"""The tenants table: which tenant each API key belongs to (functions/common/tenant_store.py). Every
function whose settings read it (the functions behind keyed routes: functions/common/tenants.py) gets its
name and a grant to read one key's item at a time, from ServiceFunction."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.common.tenant_store import KEY_PREFIX, PARTITION_KEY
from infra.constructs.table_access import grant_items
from infra.constructs.tables import money_table

CONSTRUCT_ID = "Tenants"


class Tenants(Construct):
    def __init__(self, scope: Construct, construct_id: str = CONSTRUCT_ID) -> None:
        super().__init__(scope, construct_id)
        self.table: dynamodb.Table = money_table(self, "TenantsTable", partition_key=PARTITION_KEY)

    @classmethod
    def of(cls, scope: Construct) -> Tenants:
        """The stack's tenants (created on first use)."""
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(CONSTRUCT_ID)
        if existing is None:
            return cls(stack)
        if not isinstance(existing, Tenants):
            raise TypeError(f"{stack.node.path}/{CONSTRUCT_ID} is not the stack's Tenants construct")
        return existing

    def grant_resolve(self, function: lambda_.IFunction) -> None:
        grant_items(self.table, function, "dynamodb:GetItem", key_prefix=KEY_PREFIX)
