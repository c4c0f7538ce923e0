from __future__ import annotations

from pydantic import Field

from functions.psp.settings import PspWorkerSettings


class PayoutExecutorSettings(PspWorkerSettings):
    payouts_table: str = Field(alias="PAYOUT_EXECUTIONS_TABLE_NAME")
