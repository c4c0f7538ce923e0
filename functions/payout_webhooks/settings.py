from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings
from functions.psp_webhooks.signatures import TOLERANCE_SECONDS


class PayoutWebhookSettings(FunctionSettings):
    payouts_table: str = Field(alias="PAYOUT_EXECUTIONS_TABLE_NAME")
    # The webhook event log it shares with the PSP's receiver (its keys prefixed: see handler.py).
    events_table: str = Field(alias="WEBHOOK_EVENTS_TABLE_NAME")
    # The provider's own signing secrets (not the PSP's).
    secret_arn: str = Field(alias="PAYOUT_PROVIDER_WEBHOOK_SECRET_ARN")
    tolerance_seconds: int = Field(default=TOLERANCE_SECONDS, alias="WEBHOOK_TOLERANCE_SECONDS", gt=0)
    secret_cache_seconds: int = Field(default=30, alias="WEBHOOK_SECRET_CACHE_SECONDS", gt=0, le=300)
