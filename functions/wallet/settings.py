from __future__ import annotations

from pydantic import Field

from functions.common.backoff import RetryPolicy
from functions.common.settings import FunctionSettings
from functions.common.tenants import TenantScopedSettings


class WalletSettings(FunctionSettings):
    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    ledger_queue_url: str = Field(alias="LEDGER_QUEUE_URL")
    # How long a held order's share waits in `pending` for fulfilment before it is released anyway.
    fulfilment_hold_days: int = Field(default=7, ge=0, le=365, alias="PAYMENTS_FULFILMENT_HOLD_DAYS")


class WalletApiSettings(TenantScopedSettings):
    wallet_table: str = Field(alias="WALLET_TABLE_NAME")


class WalletWaitSettings(FunctionSettings):
    """A wallet worker whose records wait for a message on another queue (a release or a refund for an order
    whose credit is still on the wallet queue, a refund's restore for its debit): backoff by age, with the
    PSP workers' names (the local stack shortens them alike), and its own dead-letter queue.

    A week: longer than the wallet queue keeps a credit (4 days), so a record gives up only once its credit
    can no longer come from that queue, with 3 days more to redrive one from the wallet's dead-letter queue
    (which pages at once). 5 s doubling to a 30-minute cap: a release that raced its credit by seconds is
    retried within seconds, one whose credit is stuck twice an hour (681 receives at most in the week, within
    SQS's 1000 for the queue's maxReceiveCount backstop)."""

    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL")
    retry_base_seconds: int = Field(default=5, alias="RETRY_BASE_SECONDS", ge=1)
    retry_cap_seconds: int = Field(default=1800, alias="RETRY_CAP_SECONDS", ge=1)
    max_message_age_seconds: int = Field(default=7 * 24 * 3600, alias="MAX_MESSAGE_AGE_SECONDS", ge=1)
    error_receives: int = Field(default=5, alias="ERROR_RECEIVES", ge=1)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_seconds=self.retry_base_seconds,
            cap_seconds=self.retry_cap_seconds,
            max_age_seconds=self.max_message_age_seconds,
            error_receives=self.error_receives,
        )


def default_wallet_wait_policy() -> RetryPolicy:
    """The holds and refunds workers' backoff as deployed: the template sizes their queues by it."""
    fields = WalletWaitSettings.model_fields
    return RetryPolicy(
        base_seconds=fields["retry_base_seconds"].default,
        cap_seconds=fields["retry_cap_seconds"].default,
        max_age_seconds=fields["max_message_age_seconds"].default,
        error_receives=fields["error_receives"].default,
    )


class WalletRefundSettings(WalletWaitSettings):
    """The refunds worker: a restore waits for its refund's debit, a debit for its order's credit."""

    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    ledger_postings_queue_url: str = Field(alias="LEDGER_POSTINGS_QUEUE_URL")


class WalletHoldsSettings(WalletWaitSettings):
    """The holds worker: releases held orders' pending shares and hands their journals to the ledger; a
    release waits for its order's credit."""

    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    ledger_postings_queue_url: str = Field(alias="LEDGER_POSTINGS_QUEUE_URL")


class HoldSweepSettings(FunctionSettings):
    """The hourly sweep: asks the holds worker to release every hold whose period is over."""

    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    wallet_holds_queue_url: str = Field(alias="WALLET_HOLDS_QUEUE_URL")
    # Days of due-index buckets a sweep reads back from today: a sweep that was down this long still finds
    # every hold that came due meanwhile (an empty bucket costs one Query).
    lookback_days: int = Field(default=30, ge=1, le=366, alias="HOLD_SWEEP_LOOKBACK_DAYS")
