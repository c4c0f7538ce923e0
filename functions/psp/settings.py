"""What every function that calls the PSP reads: where it is, its API key's secret, timeouts, retries."""

from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings


class PspSettings(FunctionSettings):
    psp_base_url: str = Field(alias="PSP_BASE_URL")
    # The Secrets Manager secret holding the PSP API key (read on first call, cached; never in the env).
    psp_api_key_secret: str = Field(alias="PSP_API_KEY_SECRET_ARN")
    psp_timeout_seconds: float = Field(default=2.0, alias="PSP_TIMEOUT_SECONDS", gt=0)
    psp_max_retries: int = Field(default=4, alias="PSP_MAX_RETRIES", ge=0)
