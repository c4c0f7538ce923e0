from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings
from functions.common.tenants import TenantScopedSettings


class PayoutApiSettings(TenantScopedSettings):
    payouts_table: str = Field(alias="PAYOUTS_TABLE_NAME")
    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    sellers_table: str = Field(alias="SELLERS_TABLE_NAME")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE_NAME")
    state_machine_arn: str = Field(alias="PAYOUT_STATE_MACHINE_ARN")


class ScheduledPayoutSettings(FunctionSettings):
    payouts_table: str = Field(alias="PAYOUTS_TABLE_NAME")
    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    sellers_table: str = Field(alias="SELLERS_TABLE_NAME")
    state_machine_arn: str = Field(alias="PAYOUT_STATE_MACHINE_ARN")
    # Sellers whose available balance is at least this many major units (100.00 USD, 100 JPY, 100.000 KWD)
    threshold_major: int = Field(default=100, alias="PAYOUT_THRESHOLD_MAJOR", ge=1)
