"""Tenants: every marketplace using the service is one, with its own API keys. A request's tenant is the
tenant its API key was registered to; a key nobody registered (the stack's own key, and any a team made
outside `payments tenants`) belongs to the default tenant, so a stack without tenants works as before."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from functions.common.settings import FunctionSettings

DEFAULT_TENANT = "default"
# Lower-case, so a tenant id is also usable in the names of the AWS resources made for it (usage plans).
TENANT_ID_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"


class Tenant(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)
    created_at: datetime

    @field_validator("tenant_id")
    @classmethod
    def _not_the_default(cls, tenant_id: str) -> str:
        # Every unregistered key is the default tenant's: a key registered as `default` would be too.
        if tenant_id == DEFAULT_TENANT:
            raise ValueError(f"{DEFAULT_TENANT!r} is the stack's own tenant and cannot be registered")
        return tenant_id


class TenantDirectory(Protocol):
    def tenant_of_key(self, api_key_id: str) -> str | None: ...


class TenantScopedSettings(FunctionSettings):
    """Settings of a function that serves keyed routes: it resolves each caller's tenant. CDK gives every
    function whose settings derive from this the tenants table's name and a grant to read it."""

    tenants_table: str = Field(alias="TENANTS_TABLE_NAME")


def valid_tenant_id(tenant_id: str) -> bool:
    return re.fullmatch(TENANT_ID_PATTERN, tenant_id) is not None


# How long an unregistered key is taken as the default tenant's before the directory is asked again.
UNREGISTERED_KEY_SECONDS = 60.0


class KeyTenants:
    """Each API key's tenant, as the directory says, cached per process: a registered key's for good (a
    key's tenant never changes), an unregistered key's (the default tenant's) for a minute only, so a key
    registered since is soon read as its tenant's. `payments tenants` registers a key before the key can
    call; the minute covers a key someone attached to the API by hand first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.registered: dict[str, str] = {}
        self.unregistered_until: dict[str, float] = {}

    def tenant_of(self, api_key_id: str, directory: TenantDirectory) -> str:
        """A directory that cannot answer raises: falling back to the default tenant then would show one
        tenant's data to another."""
        known = self.registered.get(api_key_id)
        if known is not None:
            return known
        if self.unregistered_until.get(api_key_id, -1.0) > self.clock():
            return DEFAULT_TENANT
        found = directory.tenant_of_key(api_key_id)
        if found is None:
            self.unregistered_until[api_key_id] = self.clock() + UNREGISTERED_KEY_SECONDS
            return DEFAULT_TENANT
        self.registered[api_key_id] = found
        self.unregistered_until.pop(api_key_id, None)
        return found

    def clear(self) -> None:
        self.registered.clear()
        self.unregistered_until.clear()


# A tenant's ids are stored scoped: `<tenant>~<id>`. The separator is outside the alphabet of every id a
# client sends (functions/common/ids.py), so a client cannot name another tenant's record, and the default
# tenant's ids are stored as they are (a stack without tenants keeps its data as it was).
SEPARATOR = "~"
SCOPED_ID_PATTERN = rf"^(?:[a-z][a-z0-9-]{{1,39}}{SEPARATOR})?[A-Za-z0-9_-]{{1,64}}$"
ScopedId = Annotated[str, Field(pattern=SCOPED_ID_PATTERN)]


def scoped_id(tenant_id: str, local_id: str) -> str:
    """The id under which `tenant_id`'s record named `local_id` (as its client knows it) is stored."""
    if SEPARATOR in local_id:
        raise ValueError(f"{local_id!r} is already scoped")
    return local_id if tenant_id == DEFAULT_TENANT else f"{tenant_id}{SEPARATOR}{local_id}"


def tenant_of_id(stored_id: str) -> str:
    """Whose record a stored id names."""
    tenant, separator, _ = stored_id.partition(SEPARATOR)
    return tenant if separator else DEFAULT_TENANT


def client_text(tenant_id: str, text: str) -> str:
    """`text` as the tenant's client knows it: every scoped id of the tenant in it, unscoped."""
    if tenant_id == DEFAULT_TENANT:
        return text
    # Not inside a longer tenant id ("acme~" in "bigacme~x" is not acme's).
    return re.sub(rf"(?<![a-z0-9-]){re.escape(tenant_id + SEPARATOR)}", "", text)
