from __future__ import annotations

from pydantic import Field

from functions.psp.settings import PspSettings, default_retry_policy

# How long the normal path (the executor's retries, the PSP's webhook) has before the sweep asks the PSP:
# long enough for a lost webhook to be the likely story, short enough that the buyer does not wait long.
DEFAULT_RESOLVE_AFTER_SECONDS = 1800
DEFAULT_STUCK_AFTER_SECONDS = 4 * 3600
# How long an executor attempt holds an order from its claim. An attempt lives at most its Lambda's
# timeout, PSP calls and their retries included (the infra sets at least that); only past its lease does
# "no charge at the PSP" mean "never charged" - a DLQ redrive may start a new attempt at any age.
DEFAULT_LEASE_SECONDS = 300


class RecoverySettings(PspSettings):
    orders_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    wallet_queue_url: str = Field(alias="WALLET_QUEUE_URL")
    order_status_queue_url: str = Field(alias="ORDER_STATUS_QUEUE_URL")
    resolve_after_seconds: int = Field(default=DEFAULT_RESOLVE_AFTER_SECONDS, alias="RESOLVE_AFTER_SECONDS", ge=0)
    stuck_after_seconds: int = Field(default=DEFAULT_STUCK_AFTER_SECONDS, alias="STUCK_AFTER_SECONDS", ge=0)
    lease_seconds: int = Field(default=DEFAULT_LEASE_SECONDS, alias="LEASE_SECONDS", ge=1)
    # How long the executor's queue retries an order's message (its workers' maximum message age): before
    # that, "the PSP has no charge" may only mean the PSP has been down, and a retry will charge.
    retry_window_seconds: int = Field(
        default=default_retry_policy().max_age_seconds, alias="RETRY_WINDOW_SECONDS", ge=0
    )
    # Kept back at the end of a sweep to emit its report and metrics before the function's timeout.
    stop_margin_seconds: int = Field(default=30, alias="STOP_MARGIN_SECONDS", ge=1)
