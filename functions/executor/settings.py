from __future__ import annotations

from pydantic import Field

from functions.psp.settings import PspWorkerSettings


class ExecutorSettings(PspWorkerSettings):
    orders_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    wallet_queue_url: str = Field(alias="WALLET_QUEUE_URL")
    order_status_queue_url: str = Field(alias="ORDER_STATUS_QUEUE_URL")
