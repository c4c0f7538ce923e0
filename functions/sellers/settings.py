from __future__ import annotations

from pydantic import Field

from functions.common.tenants import TenantScopedSettings


class SellersApiSettings(TenantScopedSettings):
    sellers_table: str = Field(alias="SELLERS_TABLE_NAME")
    # The key that seals bank account numbers (its own key: only this API and the payout executor use it).
    accounts_key_arn: str = Field(alias="PAYOUT_ACCOUNTS_KEY_ARN")
