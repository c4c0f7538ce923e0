from __future__ import annotations

from pydantic import Field

from functions.psp.settings import PspSettings

# How long the normal path (the executor's retries, the PSP's webhook) has before the sweep asks the PSP:
# AWS's worst case for the executor queue's redeliveries, 5 receives x 180 s visibility.
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
