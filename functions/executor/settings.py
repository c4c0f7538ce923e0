from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings


class ExecutorSettings(FunctionSettings):
    orders_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    wallet_queue_url: str = Field(alias="WALLET_QUEUE_URL")
    order_status_queue_url: str = Field(alias="ORDER_STATUS_QUEUE_URL")
    psp_base_url: str = Field(alias="PSP_BASE_URL")
    # The Secrets Manager secret holding the PSP API key (read on first charge, cached; never in the env).
    psp_api_key_secret: str = Field(alias="PSP_API_KEY_SECRET_ARN")
    psp_timeout_seconds: float = Field(default=2.0, alias="PSP_TIMEOUT_SECONDS", gt=0)
    psp_max_retries: int = Field(default=4, alias="PSP_MAX_RETRIES", ge=0)
