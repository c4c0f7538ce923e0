"""Wallet Lambda: the credit consumer (the read API is functions/wallet/api.py)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.events import OrderCharged
from functions.common.observability import correlate, logger, metrics, tracer
from functions.common.queues import QueuePublisher, consume_batch, record_model
from functions.wallet import domain
from functions.wallet.settings import WalletSettings
from functions.wallet.store import DynamoWalletStore


@dataclass(frozen=True)
class CreditPorts:
    store: DynamoWalletStore
    ledger: QueuePublisher
    hold_days: int


@functools.cache
def _credit_ports() -> CreditPorts:
    settings = WalletSettings.from_env()
    return CreditPorts(
        store=DynamoWalletStore(settings.wallet_table),
        ledger=QueuePublisher(settings.ledger_queue_url),
        hold_days=settings.fulfilment_hold_days,
    )


_RECORD = record_model(OrderCharged)


def _credit(charge: OrderCharged) -> None:
    correlate(charge.payment_id, payment_order_id=charge.payment_order_id)
    ports = _credit_ports()
    credited = domain.credit_order(charge, store=ports.store, ledger=ports.ledger, hold_days=ports.hold_days)
    logger.info("wallet credit", extra={"applied_now": credited, "amount": charge.amount, "hold": charge.hold})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _RECORD, _credit)
