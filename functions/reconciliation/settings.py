from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings


class ReconciliationSettings(FunctionSettings):
    runs_table: str = Field(alias="RECONCILIATION_TABLE_NAME")
    executor_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    report_prefix: str = Field(default="reports/", alias="REPORT_PREFIX")


class ReconciliationApiSettings(FunctionSettings):
    runs_table: str = Field(alias="RECONCILIATION_TABLE_NAME")
