from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings


class WalletSettings(FunctionSettings):
    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    ledger_queue_url: str = Field(alias="LEDGER_QUEUE_URL")
    # How long a held order's share waits in `pending` for fulfilment before it is released anyway.
    fulfilment_hold_days: int = Field(default=7, ge=0, le=365, alias="PAYMENTS_FULFILMENT_HOLD_DAYS")


class WalletApiSettings(FunctionSettings):
    wallet_table: str = Field(alias="WALLET_TABLE_NAME")


class WalletRefundSettings(FunctionSettings):
    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    ledger_postings_queue_url: str = Field(alias="LEDGER_POSTINGS_QUEUE_URL")


class WalletHoldsSettings(FunctionSettings):
    """The holds worker: releases held orders' pending shares and hands their journals to the ledger."""

    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    ledger_postings_queue_url: str = Field(alias="LEDGER_POSTINGS_QUEUE_URL")


class HoldSweepSettings(FunctionSettings):
    """The hourly sweep: asks the holds worker to release every hold whose period is over."""

    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    wallet_holds_queue_url: str = Field(alias="WALLET_HOLDS_QUEUE_URL")
    # Days of due-index buckets a sweep reads back from today: a sweep that was down this long still finds
    # every hold that came due meanwhile (an empty bucket costs one Query).
    lookback_days: int = Field(default=30, ge=1, le=366, alias="HOLD_SWEEP_LOOKBACK_DAYS")
