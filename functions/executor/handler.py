"""Executor Lambda: consumes the executor queue and charges each pay-in order once at the PSP.

Orders of one batch are charged concurrently (a small thread pool), each started only while the invocation
has time left to finish it; a PSP that is slow, failing or behind an open circuit makes the order come
back later with backoff, never fail (functions/common/queues.py, functions/psp/worker.py)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.events import ExecuteOrder
from functions.common.observability import logger, metrics, tracer
from functions.common.queues import BatchOptions, QueuePublisher, consume_batch, record_model
from functions.executor import domain
from functions.executor.psp_metrics import MeteredPsp
from functions.executor.settings import ExecutorSettings
from functions.executor.store import DynamoExecutionStore
from functions.psp.breaker import GuardedPsp
from functions.psp.worker import batch_options, guarded_psp


@dataclass(frozen=True)
class ChargePorts:
    store: domain.ExecutionStore
    psp: domain.Psp
    wallet: domain.Publisher
    order_status: domain.Publisher
    batch: BatchOptions
    breaker: GuardedPsp


@functools.cache
def ports() -> ChargePorts:
    settings = ExecutorSettings.from_env()
    psp = guarded_psp(settings)
    return ChargePorts(
        store=DynamoExecutionStore(settings.orders_table),
        psp=MeteredPsp(psp),
        wallet=QueuePublisher(settings.wallet_queue_url),
        order_status=QueuePublisher(settings.order_status_queue_url),
        batch=batch_options(settings),
        breaker=psp,
    )


_RECORD = record_model(ExecuteOrder)


def _execute(order: ExecuteOrder) -> None:
    # Orders run on threads: each one's log lines carry its own ids.
    logger.thread_safe_append_keys(
        correlation_id=order.payment_id, payment_id=order.payment_id, payment_order_id=order.payment_order_id
    )
    wired = ports()
    # While the PSP's circuit is open the order is not even claimed (so a new one stays off the recovery
    # sweep's index); it comes back with backoff.
    wired.breaker.fail_fast()
    execution = domain.execute_order(
        order, store=wired.store, psp=wired.psp, wallet=wired.wallet, order_status=wired.order_status
    )
    logger.info("order executed", extra={"status": execution.status, "attempts": execution.attempts})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _RECORD, _execute, ports().batch)
