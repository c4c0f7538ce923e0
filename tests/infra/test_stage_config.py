"""Per-stage configuration from CDK context: typed, validated, overridable per field."""

from __future__ import annotations

import pytest
from aws_cdk import App
from pydantic import ValidationError

from infra.config import StageConfig, stage_config


def test_dev_and_prod_differ_where_production_needs_it() -> None:
    dev, prod = StageConfig.for_stage("dev"), StageConfig.for_stage("prod")
    assert (dev.executor_concurrency, prod.executor_concurrency) == (5, 25)
    assert (dev.log_retention_days, prod.log_retention_days) == (30, 365)
    assert (dev.api_rate_limit, dev.api_burst_limit, dev.api_daily_quota) == (50, 100, 100_000)
    assert (prod.api_rate_limit, prod.api_burst_limit, prod.api_daily_quota) == (200, 400, 5_000_000)
    assert prod.waf_rate_limit_per_ip == 200 * 300
    # A held order's share waits a week for fulfilment in both
    assert (dev.fulfilment_hold_days, prod.fulfilment_hold_days) == (7, 7)


def test_context_picks_the_stage_and_overrides_fields_given_as_cli_strings() -> None:
    # Given `cdk deploy -c stage=prod -c executorConcurrency=30 -c pspBaseUrl=...` (CLI context is text)
    app = App(context={"stage": "prod", "executorConcurrency": "30", "pspBaseUrl": "https://api.psp.example/v1"})
    # When the stacks read their configuration
    config = stage_config(app)
    # Then the values are typed, and the rest is prod's
    assert config.stage == "prod"
    assert config.executor_concurrency == 30
    assert config.psp_base_url == "https://api.psp.example/v1"
    assert config.log_retention_days == 365
    assert config.alarm_email is None
    assert config.fulfilment_hold_days == 7


def test_the_hold_period_is_overridable_as_cli_text_from_none_to_a_year() -> None:
    assert stage_config(App(context={"fulfilmentHoldDays": "14"})).fulfilment_hold_days == 14
    assert stage_config(App(context={"stage": "prod", "fulfilmentHoldDays": "0"})).fulfilment_hold_days == 0
    assert stage_config(App(context={"fulfilmentHoldDays": "365"})).fulfilment_hold_days == 365


def test_the_default_stage_is_dev() -> None:
    assert stage_config(App()).stage == "dev"


@pytest.mark.parametrize(
    ("context", "error"),
    [
        ({"stage": "staging"}, ValueError),
        ({"stage": "prod", "executorConcurrency": "0"}, ValidationError),
        ({"stage": "prod", "logRetentionDays": "45"}, ValidationError),
        ({"stage": "dev", "pspBaseUrl": "http://psp.example"}, ValidationError),
        ({"stage": "dev", "apiRateLimit": "fast"}, ValidationError),
        ({"stage": "dev", "fulfilmentHoldDays": "366"}, ValidationError),
        ({"stage": "prod", "fulfilmentHoldDays": "-1"}, ValidationError),
    ],
)
def test_a_wrong_value_fails_synthesis_instead_of_deploying(context: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        stage_config(App(context=context))
