from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings
from functions.psp_webhooks.signatures import TOLERANCE_SECONDS


class PspWebhookSettings(FunctionSettings):
    orders_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    events_table: str = Field(alias="WEBHOOK_EVENTS_TABLE_NAME")
    secret_arn: str = Field(alias="WEBHOOK_SECRET_ARN")
    wallet_queue_url: str = Field(alias="WALLET_QUEUE_URL")
    order_status_queue_url: str = Field(alias="ORDER_STATUS_QUEUE_URL")
    disputes_queue_url: str = Field(alias="DISPUTES_QUEUE_URL")
    refunds_table: str = Field(alias="REFUNDS_TABLE_NAME")
    wallet_refunds_queue_url: str = Field(alias="WALLET_REFUNDS_QUEUE_URL")
    tolerance_seconds: int = Field(default=TOLERANCE_SECONDS, alias="WEBHOOK_TOLERANCE_SECONDS", gt=0)
    # How long the signing secrets are cached, failed verifications included: at most one read per period
    # per execution environment, and a rotation (the new value stored next to the old) is seen within it.
    secret_cache_seconds: int = Field(default=30, alias="WEBHOOK_SECRET_CACHE_SECONDS", gt=0, le=300)
