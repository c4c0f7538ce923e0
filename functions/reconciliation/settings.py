from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings


class ReconciliationSettings(FunctionSettings):
    """The settlement-file consumer and the Distributed Map's row worker."""

    runs_table: str = Field(alias="RECONCILIATION_TABLE_NAME")
    settlements_table: str = Field(alias="SETTLEMENTS_TABLE_NAME")
    executor_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    report_prefix: str = Field(default="reports/", alias="REPORT_PREFIX")
    review_queue_url: str = Field(alias="REVIEW_QUEUE_URL")
    ledger_postings_queue_url: str = Field(alias="LEDGER_POSTINGS_QUEUE_URL")
    state_machine_arn: str = Field(alias="LARGE_FILE_STATE_MACHINE_ARN")
    # Files above this size fan out over a Distributed Map (the stream path must finish in one invocation).
    distributed_threshold_bytes: int = Field(default=8 * 1024 * 1024, alias="DISTRIBUTED_THRESHOLD_BYTES")
    # Orders decided this long after a file's cut-off are temporary breaks, expected in the next file.
    cutoff_grace_seconds: int = Field(default=900, alias="CUTOFF_GRACE_SECONDS")


class ReconciliationApiSettings(FunctionSettings):
    runs_table: str = Field(alias="RECONCILIATION_TABLE_NAME")
