"""What a function that calls the payout provider reads: where it is, its API key's secret (not the PSP's),
and its own timeouts and retries, whose budget must fit the function's timeout as the PSP's does."""

from __future__ import annotations

from pydantic import Field

from functions.psp.settings import CallTimingSettings, PspCallBudget


class PayoutProviderSettings(CallTimingSettings):
    # A payout is at most four calls, one after the other: the lookup of a payment already made, the payee
    # (idempotent), the payment, and on a refusal the lookup again.
    calls_per_record = 4
    payout_provider_url: str = Field(alias="PAYOUT_PROVIDER_URL")
    # The Secrets Manager secret holding the provider's API key (read on first call, cached; never in the env).
    payout_provider_api_key_secret: str = Field(alias="PAYOUT_PROVIDER_API_KEY_SECRET_ARN")
    payout_provider_timeout_seconds: float = Field(default=3.0, alias="PAYOUT_PROVIDER_TIMEOUT_SECONDS", gt=0)
    # One retry within a call (four calls must fit the worker's 30 s); longer trouble is the queue's backoff.
    payout_provider_max_retries: int = Field(default=1, alias="PAYOUT_PROVIDER_MAX_RETRIES", ge=0)
    payout_provider_backoff_factor: float = Field(default=0.2, alias="PAYOUT_PROVIDER_BACKOFF_FACTOR", ge=0)
    payout_provider_backoff_jitter: float = Field(default=0.2, alias="PAYOUT_PROVIDER_BACKOFF_JITTER", ge=0)
    payout_provider_backoff_max: float = Field(default=2.0, alias="PAYOUT_PROVIDER_BACKOFF_MAX_SECONDS", ge=0)

    @property
    def call_budget(self) -> PspCallBudget:
        return PspCallBudget(
            timeout_seconds=self.payout_provider_timeout_seconds,
            max_retries=self.payout_provider_max_retries,
            backoff_factor=self.payout_provider_backoff_factor,
            backoff_jitter=self.payout_provider_backoff_jitter,
            backoff_max=self.payout_provider_backoff_max,
        )
