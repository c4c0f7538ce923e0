"""Executor Lambda: consumes the executor queue and charges each order once at the PSP."""

from __future__ import annotations

import functools
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.events import ExecuteOrder
from functions.common.observability import logger, metrics, tracer
from functions.common.queues import QueuePublisher, consume_batch, record_model
from functions.common.secrets import SecretValue
from functions.executor import domain
from functions.executor.psp import ChargeResult, PspClient
from functions.executor.settings import ExecutorSettings
from functions.executor.store import DynamoExecutionStore

SETTINGS_MODELS = {"handler": ExecutorSettings}


class _MeteredPsp:
    """Records charge latency and declines around the real client."""

    def __init__(self, psp: PspClient) -> None:
        self._psp = psp

    def charge(self, **kwargs: Any) -> ChargeResult:
        started = time.perf_counter()
        result = self._psp.charge(**kwargs)
        metrics.add_metric(
            name="PspChargeLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
        )
        if result.status == "failed":
            metrics.add_metric(name="ChargesDeclined", unit=MetricUnit.Count, value=1)
        return result


@functools.cache
def _ports() -> dict[str, Any]:
    settings = ExecutorSettings.from_env()
    return {
        "store": DynamoExecutionStore(settings.orders_table),
        "psp": _MeteredPsp(
            PspClient(
                settings.psp_base_url,
                timeout_seconds=settings.psp_timeout_seconds,
                max_retries=settings.psp_max_retries,
                api_key=SecretValue(settings.psp_api_key_secret),
            )
        ),
        "wallet": QueuePublisher(settings.wallet_queue_url),
        "order_status": QueuePublisher(settings.order_status_queue_url),
    }


_RECORD = record_model(ExecuteOrder)


def _execute(order: ExecuteOrder) -> None:
    logger.append_keys(payment_id=order.payment_id, payment_order_id=order.payment_order_id)
    execution = domain.execute_order(order, **_ports())
    logger.info("order executed", extra={"status": execution.status, "attempts": execution.attempts})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _RECORD, _execute)
