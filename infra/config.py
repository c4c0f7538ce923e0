"""Typed per-stage configuration, read from CDK context.

`stage` (cdk.json's default, or `cdk deploy -c stage=prod`) picks one of STAGES; any field can then be
overridden with a context key of its camelCase name, e.g. `-c pspBaseUrl=https://api.psp.example`,
`-c executorConcurrency=30` or `-c fulfilmentHoldDays=14`. CLI context values arrive as strings; pydantic
validates and converts them, so a typo fails synthesis instead of deploying a wrong number."""

from __future__ import annotations

from typing import Any, Literal

from aws_cdk import aws_logs as logs
from constructs import Construct
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

Stage = Literal["dev", "prod"]
RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
}


class StageConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    stage: Stage
    psp_base_url: str = Field(default="https://psp.invalid", pattern=r"^https://[^\s/]+(/\S*)?$")
    # The payout provider's API (a service of its own: payees and payments), e.g. -c payoutProviderUrl=https://...
    payout_provider_url: str = Field(default="https://payouts.invalid", pattern=r"^https://[^\s/]+(/\S*)?$")
    # The PSP's contracted request rate bounds the executor: each copy makes ~3 charges/s (batch of 10,
    # ~300 ms per charge), so N copies stay under ~3N requests/s. Sandbox PSPs allow ~25/s, live ~100/s.
    # It is the executor queue's event source mapping's maximum concurrency (2 to 1000 in Lambda).
    executor_concurrency: int = Field(ge=2, le=1000)
    # CloudWatch Logs retention for functions, the API's access log and the alarm/audit trail.
    log_retention_days: int
    api_rate_limit: int = Field(ge=1, description="steady requests/s across all clients (stage + usage plan)")
    api_burst_limit: int = Field(ge=1)
    api_daily_quota: int = Field(ge=1, description="requests per day per API key (usage plan)")
    alarm_email: str | None = None
    # How long a held order's share waits in `pending` for the marketplace's fulfilment before it is released
    # anyway (the wallet's PAYMENTS_FULFILMENT_HOLD_DAYS; the hourly sweep releases it once it is due).
    fulfilment_hold_days: int = Field(default=7, ge=0, le=365)

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, days: int) -> int:
        if days not in RETENTION:
            raise ValueError(f"log retention must be one of {sorted(RETENTION)} days")
        return days

    @property
    def log_retention(self) -> logs.RetentionDays:
        return RETENTION[self.log_retention_days]

    @property
    def waf_rate_limit_per_ip(self) -> int:
        """Requests per IP per 5 minutes (WAF's window): the API's steady rate, from one client."""
        return max(100, self.api_rate_limit * 300)

    @classmethod
    def for_stage(cls, stage: str, **overrides: Any) -> StageConfig:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {sorted(STAGES)}")
        return cls.model_validate({**STAGES[stage], "stage": stage, **overrides})

    @classmethod
    def from_context(cls, scope: Construct) -> StageConfig:
        """The stage configuration for this app (context `stage`, then per-field context overrides)."""
        node = scope.node
        stage = node.try_get_context("stage") or "dev"
        fields = {name: field.alias or name for name, field in cls.model_fields.items() if name != "stage"}
        overrides = {name: node.try_get_context(alias) for name, alias in fields.items()}
        return cls.for_stage(str(stage), **{k: v for k, v in overrides.items() if v is not None})


STAGES: dict[str, dict[str, Any]] = {
    "dev": {
        "executor_concurrency": 5,
        "log_retention_days": 30,
        "api_rate_limit": 50,
        "api_burst_limit": 100,
        "api_daily_quota": 100_000,
    },
    "prod": {
        "executor_concurrency": 25,
        # PCI DSS 10.5.1: keep audit log history for at least 12 months.
        "log_retention_days": 365,
        # 1M payments/day is ~12/s on average; leave room for peaks and status polling.
        "api_rate_limit": 200,
        "api_burst_limit": 400,
        "api_daily_quota": 5_000_000,
    },
}


def stage_config(scope: Construct) -> StageConfig:
    return StageConfig.from_context(scope)
