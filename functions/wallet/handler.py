"""Wallet Lambdas: the credit consumer and the read API."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.api import build_resolver
from functions.common.api_docs import read_responses
from functions.common.events import OrderCharged
from functions.common.ids import ID_PATTERN
from functions.common.observability import correlate, logger, metrics, tracer
from functions.common.queues import QueuePublisher, consume_batch, record_model
from functions.wallet import domain
from functions.wallet.settings import WalletApiSettings, WalletSettings
from functions.wallet.store import DynamoWalletStore


@dataclass(frozen=True)
class CreditPorts:
    store: DynamoWalletStore
    ledger: QueuePublisher


@functools.cache
def _credit_ports() -> CreditPorts:
    settings = WalletSettings.from_env()
    return CreditPorts(store=DynamoWalletStore(settings.wallet_table), ledger=QueuePublisher(settings.ledger_queue_url))


_RECORD = record_model(OrderCharged)


def _credit(charge: OrderCharged) -> None:
    correlate(charge.payment_id, payment_order_id=charge.payment_order_id)
    ports = _credit_ports()
    credited = domain.credit_order(charge, store=ports.store, ledger=ports.ledger)
    logger.info("wallet credit", extra={"applied_now": credited, "amount": charge.amount})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _RECORD, _credit)


app = build_resolver()


@dataclass(frozen=True)
class ApiPorts:
    store: DynamoWalletStore


@functools.cache
def _api_ports() -> ApiPorts:
    return ApiPorts(store=DynamoWalletStore(WalletApiSettings.from_env().wallet_table))


@app.get(
    "/v1/wallets/<seller_id>",
    operation_id="read_wallet",
    summary="A seller's balances per currency",
    responses=read_responses("The seller's balances per currency; a seller with no money yet has none."),
)
def read_wallet(seller_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> domain.WalletView:
    return domain.wallet_view(seller_id, store=_api_ports().store)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
