"""Executor Lambda: consumes the executor queue and charges each pay-in order once at the PSP."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.events import ExecuteOrder
from functions.common.observability import correlate, logger, metrics, tracer
from functions.common.queues import QueuePublisher, consume_batch, record_model
from functions.executor import domain
from functions.executor.psp_metrics import MeteredPsp
from functions.executor.settings import ExecutorSettings
from functions.executor.store import DynamoExecutionStore
from functions.psp.client import PspClient


@dataclass(frozen=True)
class ChargePorts:
    store: domain.ExecutionStore
    psp: domain.Psp
    wallet: domain.Publisher
    order_status: domain.Publisher


@functools.cache
def ports() -> ChargePorts:
    settings = ExecutorSettings.from_env()
    return ChargePorts(
        store=DynamoExecutionStore(settings.orders_table),
        psp=MeteredPsp(PspClient.from_settings(settings)),
        wallet=QueuePublisher(settings.wallet_queue_url),
        order_status=QueuePublisher(settings.order_status_queue_url),
    )


_RECORD = record_model(ExecuteOrder)


def _execute(order: ExecuteOrder) -> None:
    correlate(order.payment_id, payment_order_id=order.payment_order_id)
    wired = ports()
    execution = domain.execute_order(
        order, store=wired.store, psp=wired.psp, wallet=wired.wallet, order_status=wired.order_status
    )
    logger.info("order executed", extra={"status": execution.status, "attempts": execution.attempts})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _RECORD, _execute)
