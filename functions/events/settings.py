"""Settings of the event functions (CDK sets the same names: infra/constructs/events.py)."""

from __future__ import annotations

from pydantic import Field

from functions.common.backoff import RetryPolicy
from functions.common.settings import FunctionSettings
from functions.common.tenants import TenantScopedSettings


class EventsApiSettings(TenantScopedSettings):
    endpoints_table: str = Field(alias="WEBHOOK_ENDPOINTS_TABLE_NAME")
    events_table: str = Field(alias="EVENTS_TABLE_NAME")
    secrets_key_arn: str = Field(alias="WEBHOOK_SECRETS_KEY_ARN")
    # Deployed stacks take https endpoints only; the local stack turns this on for loopback test servers.
    allow_loopback_http: bool = Field(default=False, alias="WEBHOOK_ALLOW_LOOPBACK_HTTP")


class EventRecorderSettings(FunctionSettings):
    events_table: str = Field(alias="EVENTS_TABLE_NAME")
    # Which table's stream is which source of functions/events/sources.py: "payments=<table>,payouts=<table>".
    source_tables: str = Field(alias="EVENT_SOURCE_TABLES")

    def source_by_table(self) -> dict[str, str]:
        pairs = (entry.split("=", 1) for entry in self.source_tables.split(",") if entry.strip())
        return {table.strip(): source.strip() for source, table in pairs}


class EventPublisherSettings(FunctionSettings):
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")


class EventFanoutSettings(FunctionSettings):
    endpoints_table: str = Field(alias="WEBHOOK_ENDPOINTS_TABLE_NAME")
    delivery_queue_url: str = Field(alias="DELIVERY_QUEUE_URL")


class EventDeliverySettings(FunctionSettings):
    endpoints_table: str = Field(alias="WEBHOOK_ENDPOINTS_TABLE_NAME")
    secrets_key_arn: str = Field(alias="WEBHOOK_SECRETS_KEY_ARN")
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL")
    timeout_seconds: float = Field(default=10.0, alias="DELIVERY_TIMEOUT_SECONDS", gt=0)
    # The local stack reaches loopback only: deliveries to any other host fail without a connection.
    loopback_only: bool = Field(default=False, alias="WEBHOOK_DELIVER_LOOPBACK_ONLY")
    # Deliveries of one batch run side by side: a slow endpoint holds up only its own.
    batch_concurrency: int = Field(default=10, alias="BATCH_CONCURRENCY", ge=1, le=10)
    # Backoff by age, as the PSP workers' (the same names: the local stack shortens them alike): retried
    # with exponential backoff and jitter for up to 3 days, then dead-lettered.
    retry_base_seconds: int = Field(default=30, alias="RETRY_BASE_SECONDS", ge=1)
    retry_cap_seconds: int = Field(default=3600, alias="RETRY_CAP_SECONDS", ge=1)
    max_message_age_seconds: int = Field(default=3 * 24 * 3600, alias="MAX_MESSAGE_AGE_SECONDS", ge=1)
    error_receives: int = Field(default=5, alias="ERROR_RECEIVES", ge=1)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_seconds=self.retry_base_seconds,
            cap_seconds=self.retry_cap_seconds,
            max_age_seconds=self.max_message_age_seconds,
            error_receives=self.error_receives,
        )


def default_delivery_retry_policy() -> RetryPolicy:
    """The delivery queue's backoff as deployed: the template sizes its maxReceiveCount by it."""
    fields = EventDeliverySettings.model_fields
    return RetryPolicy(
        base_seconds=fields["retry_base_seconds"].default,
        cap_seconds=fields["retry_cap_seconds"].default,
        max_age_seconds=fields["max_message_age_seconds"].default,
        error_receives=fields["error_receives"].default,
    )
