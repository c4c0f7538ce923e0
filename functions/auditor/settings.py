from __future__ import annotations

from pydantic import Field

from functions.psp.settings import PspSettings
from functions.recovery.settings import DEFAULT_STUCK_AFTER_SECONDS


class AuditorSettings(PspSettings):
    """The auditor reads every money table (never writes), the DLQs' depths, and the PSP's charges by key."""

    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    ledger_table: str = Field(alias="LEDGER_TABLE_NAME")
    balances_table: str = Field(alias="LEDGER_BALANCES_TABLE_NAME")
    orders_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    refunds_table: str = Field(alias="REFUNDS_TABLE_NAME")
    # Space-separated: every dead-letter queue of the stack.
    dead_letter_queue_urls: str = Field(alias="DEAD_LETTER_QUEUE_URLS")
    # Orders decided in the last `window_seconds` (an hourly run reads two hours: each order twice), ending
    # `settle_seconds` ago, so that a just-decided order's credit and journal have landed.
    window_seconds: int = Field(default=2 * 3600, alias="AUDIT_WINDOW_SECONDS", ge=1)
    settle_seconds: int = Field(default=300, alias="AUDIT_SETTLE_SECONDS", ge=0)
    # An order still EXECUTING or PENDING after this long is a violation (the recovery sweep's own limit).
    processing_deadline_seconds: int = Field(
        default=DEFAULT_STUCK_AFTER_SECONDS, alias="AUDIT_PROCESSING_DEADLINE_SECONDS", ge=1
    )
    # How long a wallet/ledger pair that differs is given before it is read again (a move in flight).
    recheck_pause_seconds: float = Field(default=5.0, alias="AUDIT_RECHECK_PAUSE_SECONDS", ge=0)
    # Orders checked at once (each check waits on a few reads); at most the PSP client's 10 pooled connections.
    concurrency: int = Field(default=8, alias="AUDIT_CONCURRENCY", ge=1, le=10)

    @property
    def queue_urls(self) -> list[str]:
        return self.dead_letter_queue_urls.split()
