from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings
from functions.common.tenants import TenantScopedSettings
from functions.psp.settings import PspSettings, PspWorkerSettings, default_retry_policy


class RefundApiSettings(TenantScopedSettings):
    refunds_table: str = Field(alias="REFUNDS_TABLE_NAME")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE_NAME")
    # Read only: the executor's record of each charge, and the payments' order-id guards (404 or 422).
    executor_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    payments_table: str = Field(alias="PAYMENTS_TABLE_NAME")


class RefundDispatcherSettings(FunctionSettings):
    refund_queue_url: str = Field(alias="REFUND_QUEUE_URL")
    wallet_refunds_queue_url: str = Field(alias="WALLET_REFUNDS_QUEUE_URL")


class RefundExecutorSettings(PspWorkerSettings):
    refunds_table: str = Field(alias="REFUNDS_TABLE_NAME")
    wallet_refunds_queue_url: str = Field(alias="WALLET_REFUNDS_QUEUE_URL")


class OrphanRefundSettings(FunctionSettings):
    refunds_table: str = Field(alias="REFUNDS_TABLE_NAME")


# How long the normal path (the executor's answer, the PSP's verdict webhook) has before the sweep asks the
# PSP; and how long a refund may stay PENDING before it counts as stuck (alarmed).
DEFAULT_REFUND_RESOLVE_AFTER_SECONDS = 1800
DEFAULT_REFUND_STUCK_AFTER_SECONDS = 24 * 3600


class RefundRecoverySettings(PspSettings):
    refunds_table: str = Field(alias="REFUNDS_TABLE_NAME")
    refund_queue_url: str = Field(alias="REFUND_QUEUE_URL")
    wallet_refunds_queue_url: str = Field(alias="WALLET_REFUNDS_QUEUE_URL")
    resolve_after_seconds: int = Field(
        default=DEFAULT_REFUND_RESOLVE_AFTER_SECONDS, alias="RESOLVE_AFTER_SECONDS", ge=0
    )
    stuck_after_seconds: int = Field(default=DEFAULT_REFUND_STUCK_AFTER_SECONDS, alias="STUCK_AFTER_SECONDS", ge=0)
    # How long the refund queue retries a message (its workers' maximum message age): until then, "the PSP
    # has no refund" only means the request has not got through yet.
    retry_window_seconds: int = Field(
        default=default_retry_policy().max_age_seconds, alias="RETRY_WINDOW_SECONDS", ge=0
    )
    # Kept back at the end of a sweep to emit its report and metrics before the function's timeout.
    stop_margin_seconds: int = Field(default=30, alias="STOP_MARGIN_SECONDS", ge=1)
