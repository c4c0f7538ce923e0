"""What every function that calls the PSP (or, the same way, the payout provider) reads: where it is, its
API key's secret, timeouts, retries, and the time budget they add up to, checked against the function's
own timeout when the settings are read (and so when the stack is synthesized: infra/constructs/function.py)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.common.backoff import RetryPolicy
from functions.common.settings import FunctionSettings
from functions.psp.circuit import CircuitPolicy


class PspCallBudget(BaseModel):
    """The longest one PSP call can take, retries included: every attempt runs to its timeout and every
    pause between attempts is the longest urllib3's backoff allows (factor x 2^(n-1) plus the whole
    jitter, capped; no pause before the first retry). Retry-After is not honoured, so nothing else adds."""

    model_config = ConfigDict(frozen=True)

    timeout_seconds: float
    max_retries: int
    backoff_factor: float
    backoff_jitter: float
    backoff_max: float

    def pause_seconds(self, failed_attempts: int) -> float:
        """The longest pause after `failed_attempts` consecutive failures (urllib3's Retry.get_backoff_time)."""
        if failed_attempts <= 1:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (failed_attempts - 1) + self.backoff_jitter))

    @property
    def seconds(self) -> float:
        attempts = self.max_retries + 1
        return attempts * self.timeout_seconds + sum(self.pause_seconds(n) for n in range(1, attempts))


class CallTimingSettings(FunctionSettings):
    """A function whose unit of work (an order, a payout) makes one call to a payment service: the call's
    budget (`call_budget`, from the service's own settings) and the work's other calls must fit the
    function's timeout (CDK sets it from the function's own), with a margin kept back at the end of an
    invocation for handing back what was not started, and answering."""

    function_timeout_seconds: int = Field(alias="FUNCTION_TIMEOUT_SECONDS", gt=0)
    record_overhead_seconds: float = Field(default=3.0, alias="RECORD_OVERHEAD_SECONDS", ge=0)
    deadline_margin_seconds: float = Field(default=2.0, alias="DEADLINE_MARGIN_SECONDS", ge=0)
    # How many calls to the service one unit of work makes, one after the other.
    calls_per_record: ClassVar[int] = 1

    @property
    def call_budget(self) -> PspCallBudget:
        raise NotImplementedError(f"{type(self).__name__} names no payment service")

    @property
    def record_seconds(self) -> float:
        """The longest one unit of work takes: its service calls' budget and its other calls."""
        return self.calls_per_record * self.call_budget.seconds + self.record_overhead_seconds

    @model_validator(mode="after")
    def _budget_fits_the_timeout(self) -> CallTimingSettings:
        needed = self.record_seconds + self.deadline_margin_seconds
        if needed > self.function_timeout_seconds:
            raise ValueError(
                f"one unit of work may take {self.record_seconds:.1f} s ({self.calls_per_record} service call(s) of "
                f"{self.call_budget.seconds:.1f} s + {self.record_overhead_seconds:.1f} s) plus a "
                f"{self.deadline_margin_seconds:.1f} s margin: more than the {self.function_timeout_seconds} s timeout"
            )
        return self


class PspSettings(CallTimingSettings):
    psp_base_url: str = Field(alias="PSP_BASE_URL")
    # The Secrets Manager secret holding the PSP API key (read on first call, cached; never in the env).
    psp_api_key_secret: str = Field(alias="PSP_API_KEY_SECRET_ARN")
    # One attempt, connect and read together. Within a call, transient failures are retried a couple of
    # times; longer trouble is left to the queue's backoff and the circuit breaker.
    psp_timeout_seconds: float = Field(default=2.0, alias="PSP_TIMEOUT_SECONDS", gt=0)
    psp_max_retries: int = Field(default=2, alias="PSP_MAX_RETRIES", ge=0)
    psp_backoff_factor: float = Field(default=0.2, alias="PSP_BACKOFF_FACTOR", ge=0)
    psp_backoff_jitter: float = Field(default=0.2, alias="PSP_BACKOFF_JITTER", ge=0)
    psp_backoff_max: float = Field(default=2.0, alias="PSP_BACKOFF_MAX_SECONDS", ge=0)

    @property
    def psp_call_budget(self) -> PspCallBudget:
        return PspCallBudget(
            timeout_seconds=self.psp_timeout_seconds,
            max_retries=self.psp_max_retries,
            backoff_factor=self.psp_backoff_factor,
            backoff_jitter=self.psp_backoff_jitter,
            backoff_max=self.psp_backoff_max,
        )

    @property
    def call_budget(self) -> PspCallBudget:
        return self.psp_call_budget


class QueueWorkerSettings(CallTimingSettings):
    """A queue worker that calls a payment service: a bounded thread pool per batch, backoff by age for
    transient failures, its dead-letter queue, and the service's circuit breaker, shared by every copy of
    every worker calling it (one item per circuit name in the circuit table)."""

    batch_concurrency: int = Field(default=5, alias="BATCH_CONCURRENCY", ge=1, le=10)
    retry_base_seconds: int = Field(default=2, alias="RETRY_BASE_SECONDS", ge=1)
    retry_cap_seconds: int = Field(default=300, alias="RETRY_CAP_SECONDS", ge=1)
    max_message_age_seconds: int = Field(default=24 * 3600, alias="MAX_MESSAGE_AGE_SECONDS", ge=1)
    error_receives: int = Field(default=5, alias="ERROR_RECEIVES", ge=1)
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL")
    circuit_table: str = Field(alias="PSP_CIRCUIT_TABLE_NAME")
    circuit_name: str = Field(default="psp", alias="CIRCUIT_NAME")
    circuit_window_seconds: float = Field(default=10.0, alias="PSP_CIRCUIT_WINDOW_SECONDS", gt=0)
    circuit_min_calls: int = Field(default=10, alias="PSP_CIRCUIT_MIN_CALLS", ge=1)
    circuit_failure_rate: float = Field(default=0.5, alias="PSP_CIRCUIT_FAILURE_RATE", gt=0, le=1)
    circuit_cool_down_seconds: float = Field(default=15.0, alias="PSP_CIRCUIT_COOL_DOWN_SECONDS", gt=0)
    circuit_probes_to_close: int = Field(default=3, alias="PSP_CIRCUIT_PROBES_TO_CLOSE", ge=1)
    circuit_sync_seconds: float = Field(default=1.0, alias="PSP_CIRCUIT_SYNC_SECONDS", ge=1.0)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_seconds=self.retry_base_seconds,
            cap_seconds=self.retry_cap_seconds,
            max_age_seconds=self.max_message_age_seconds,
            error_receives=self.error_receives,
        )

    @property
    def circuit_policy(self) -> CircuitPolicy:
        return CircuitPolicy(
            window_seconds=self.circuit_window_seconds,
            min_calls=self.circuit_min_calls,
            failure_rate=self.circuit_failure_rate,
            cool_down_seconds=self.circuit_cool_down_seconds,
            probes_to_close=self.circuit_probes_to_close,
        )


class PspWorkerSettings(PspSettings, QueueWorkerSettings):
    """A queue worker that calls the PSP."""


def default_retry_policy() -> RetryPolicy:
    """The backoff every PSP worker runs with unless its environment says otherwise: the template sizes
    the PSP workers' queues (maxReceiveCount) by it."""
    fields = QueueWorkerSettings.model_fields
    return RetryPolicy(
        base_seconds=fields["retry_base_seconds"].default,
        cap_seconds=fields["retry_cap_seconds"].default,
        max_age_seconds=fields["max_message_age_seconds"].default,
        error_receives=fields["error_receives"].default,
    )
