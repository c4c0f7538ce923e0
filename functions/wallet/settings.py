from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings


class WalletSettings(FunctionSettings):
    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    ledger_queue_url: str = Field(alias="LEDGER_QUEUE_URL")


class WalletApiSettings(FunctionSettings):
    wallet_table: str = Field(alias="WALLET_TABLE_NAME")


class WalletRefundSettings(FunctionSettings):
    wallet_table: str = Field(alias="WALLET_TABLE_NAME")
    ledger_postings_queue_url: str = Field(alias="LEDGER_POSTINGS_QUEUE_URL")
