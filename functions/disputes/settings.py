from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings
from functions.common.tenants import TenantScopedSettings


class DisputesSettings(FunctionSettings):
    disputes_table: str = Field(alias="DISPUTES_TABLE_NAME")
    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    ledger_postings_queue_url: str = Field(alias="LEDGER_POSTINGS_QUEUE_URL")


class DisputesApiSettings(TenantScopedSettings):
    disputes_table: str = Field(alias="DISPUTES_TABLE_NAME")
