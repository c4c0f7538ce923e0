from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings
from functions.psp.settings import PspWorkerSettings


class RefundApiSettings(FunctionSettings):
    refunds_table: str = Field(alias="REFUNDS_TABLE_NAME")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE_NAME")
    # Read only: the executor's record of each charge, and the payments' order-id guards (404 or 422).
    executor_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    payments_table: str = Field(alias="PAYMENTS_TABLE_NAME")


class RefundDispatcherSettings(FunctionSettings):
    refund_queue_url: str = Field(alias="REFUND_QUEUE_URL")


class RefundExecutorSettings(PspWorkerSettings):
    refunds_table: str = Field(alias="REFUNDS_TABLE_NAME")
    wallet_refunds_queue_url: str = Field(alias="WALLET_REFUNDS_QUEUE_URL")


class OrphanRefundSettings(FunctionSettings):
    refunds_table: str = Field(alias="REFUNDS_TABLE_NAME")
