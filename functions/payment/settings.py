from __future__ import annotations

from pydantic import Field

from functions.common.settings import FunctionSettings
from functions.common.tenants import TenantScopedSettings


class PaymentApiSettings(TenantScopedSettings):
    payments_table: str = Field(alias="PAYMENTS_TABLE_NAME")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE_NAME")
    # Read only: each order's amount_refunded (functions/refund/store.py).
    refunds_table: str = Field(alias="REFUNDS_TABLE_NAME")
    # Fulfilment: the executor's orders (read only: charged? held?) and the wallet's release queue.
    executor_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    wallet_holds_queue_url: str = Field(alias="WALLET_HOLDS_QUEUE_URL")


class DispatcherSettings(FunctionSettings):
    executor_queue_url: str = Field(alias="EXECUTOR_QUEUE_URL")


class OrderStatusSettings(FunctionSettings):
    payments_table: str = Field(alias="PAYMENTS_TABLE_NAME")
