from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings
from functions.common.tenants import TenantScopedSettings


class LedgerSettings(FunctionSettings):
    ledger_table: str = Field(alias="LEDGER_TABLE_NAME")
    balances_table: str = Field(alias="LEDGER_BALANCES_TABLE_NAME")
    order_status_queue_url: str = Field(alias="ORDER_STATUS_QUEUE_URL")


class LedgerApiSettings(TenantScopedSettings):
    ledger_table: str = Field(alias="LEDGER_TABLE_NAME")
    balances_table: str = Field(alias="LEDGER_BALANCES_TABLE_NAME")


class LedgerPostingsSettings(FunctionSettings):
    ledger_table: str = Field(alias="LEDGER_TABLE_NAME")
    balances_table: str = Field(alias="LEDGER_BALANCES_TABLE_NAME")
