from __future__ import annotations

from pydantic import Field

from functions.psp.settings import PspSettings

# AWS's worst case for a live attempt at an order: 5 receives x 180 s visibility. Past it, nothing but
# the recovery job will touch an EXECUTING order, so "no charge at the PSP" really means "never charged".
DEFAULT_RESOLVE_AFTER_SECONDS = 1800
DEFAULT_STUCK_AFTER_SECONDS = 4 * 3600


class RecoverySettings(PspSettings):
    orders_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    wallet_queue_url: str = Field(alias="WALLET_QUEUE_URL")
    order_status_queue_url: str = Field(alias="ORDER_STATUS_QUEUE_URL")
    resolve_after_seconds: int = Field(default=DEFAULT_RESOLVE_AFTER_SECONDS, alias="RESOLVE_AFTER_SECONDS", ge=0)
    stuck_after_seconds: int = Field(default=DEFAULT_STUCK_AFTER_SECONDS, alias="STUCK_AFTER_SECONDS", ge=0)
