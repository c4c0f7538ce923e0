from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings
from functions.common.tenants import TenantScopedSettings


class ReconciliationSettings(FunctionSettings):
    """The settlement-file consumer and the Distributed Map's row worker."""

    runs_table: str = Field(alias="RECONCILIATION_TABLE_NAME")
    settlements_table: str = Field(alias="SETTLEMENTS_TABLE_NAME")
    executor_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    # The records the other row types settle (read only). An empty name: that service is not wired in, so
    # its rows have no record of ours (missing_internal).
    payouts_table: str = Field(alias="PAYOUTS_TABLE_NAME")
    refunds_table: str = Field(default="", alias="REFUNDS_TABLE_NAME")
    disputes_table: str = Field(default="", alias="DISPUTES_TABLE_NAME")
    report_prefix: str = Field(default="reports/", alias="REPORT_PREFIX")
    review_queue_url: str = Field(alias="REVIEW_QUEUE_URL")
    ledger_postings_queue_url: str = Field(alias="LEDGER_POSTINGS_QUEUE_URL")
    state_machine_arn: str = Field(alias="LARGE_FILE_STATE_MACHINE_ARN")
    # Files above this size fan out over a Distributed Map (the stream path must finish in one invocation).
    distributed_threshold_bytes: int = Field(default=8 * 1024 * 1024, alias="DISTRIBUTED_THRESHOLD_BYTES")
    # Orders decided this long after a file's cut-off are temporary breaks, expected in the next file.
    cutoff_grace_seconds: int = Field(default=900, alias="CUTOFF_GRACE_SECONDS")


class ReconciliationApiSettings(TenantScopedSettings):
    runs_table: str = Field(alias="RECONCILIATION_TABLE_NAME")


class SettlementDeadlineSettings(FunctionSettings):
    """The scheduled check for a day without a settlement file."""

    runs_table: str = Field(alias="RECONCILIATION_TABLE_NAME")
    settlement_bucket: str = Field(alias="SETTLEMENT_BUCKET_NAME")
    settlement_prefix: str = Field(default="settlements/", alias="SETTLEMENT_PREFIX")
    # Day D's file must have arrived by this hour (UTC) of day D+1.
    deadline_hour: int = Field(default=6, ge=0, le=23, alias="PAYMENTS_SETTLEMENT_DEADLINE_HOUR")
