"""Tenants: every marketplace using the service is one, with its own API keys. A request's tenant is the
tenant its API key was registered to; a key nobody registered (the stack's own key, and any a team made
outside `payments tenants`) belongs to the default tenant, so a stack without tenants works as before."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from functions.common.settings import FunctionSettings

DEFAULT_TENANT = "default"
# Lower-case, so a tenant id is also usable in the names of the AWS resources made for it (usage plans).
TENANT_ID_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"


class Tenant(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)
    created_at: datetime


class TenantDirectory(Protocol):
    def tenant_of_key(self, api_key_id: str) -> str | None: ...


class TenantScopedSettings(FunctionSettings):
    """Settings of a function that serves keyed routes: it resolves each caller's tenant. CDK gives every
    function whose settings derive from this the tenants table's name and a grant to read it."""

    tenants_table: str = Field(alias="TENANTS_TABLE_NAME")


def valid_tenant_id(tenant_id: str) -> bool:
    return re.fullmatch(TENANT_ID_PATTERN, tenant_id) is not None


def tenant_of_key(api_key_id: str, directory: TenantDirectory) -> str:
    """The tenant of a request made with `api_key_id`. A directory that cannot answer raises: falling back
    to the default tenant then would show one tenant's data to another."""
    return directory.tenant_of_key(api_key_id) or DEFAULT_TENANT
