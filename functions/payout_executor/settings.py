from __future__ import annotations

from pydantic import Field

from functions.payout_provider.worker import PayoutWorkerSettings


class PayoutExecutorSettings(PayoutWorkerSettings):
    payouts_table: str = Field(alias="PAYOUT_EXECUTIONS_TABLE_NAME")
    # The sellers' payout accounts (read) and the key their numbers are sealed with (decrypt).
    sellers_table: str = Field(alias="SELLERS_TABLE_NAME")
    accounts_key_arn: str = Field(alias="PAYOUT_ACCOUNTS_KEY_ARN")
    # The provider's own circuit (an item of the shared circuit table): its outage never stops charges.
    circuit_name: str = Field(default="payout-provider", alias="CIRCUIT_NAME")
