from __future__ import annotations

from pydantic import Field

from functions.psp.settings import PspWorkerSettings


class PayoutExecutorSettings(PspWorkerSettings):
    payouts_table: str = Field(alias="PAYOUT_EXECUTIONS_TABLE_NAME")
    # The sellers' payout accounts (read) and the key their numbers are sealed with (decrypt).
    sellers_table: str = Field(alias="SELLERS_TABLE_NAME")
    accounts_key_arn: str = Field(alias="PAYOUT_ACCOUNTS_KEY_ARN")
