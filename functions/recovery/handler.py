"""Recovery Lambda: the scheduled sweep of orders left undecided (EXECUTING or PENDING), settled by
asking the PSP by idempotency key, never by charging again."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.observability import logger, metrics, tracer
from functions.common.queues import QueuePublisher
from functions.executor.domain import Publisher
from functions.executor.store import DynamoExecutionStore
from functions.psp.client import PspClient
from functions.recovery import domain
from functions.recovery.settings import RecoverySettings


@dataclass(frozen=True)
class RecoveryPorts:
    settings: RecoverySettings
    store: domain.OpenOrders
    psp: domain.ChargeLookup
    wallet: Publisher
    order_status: Publisher


@functools.cache
def ports() -> RecoveryPorts:
    settings = RecoverySettings.from_env()
    return RecoveryPorts(
        settings=settings,
        store=DynamoExecutionStore(settings.orders_table),
        psp=PspClient.from_settings(settings),
        wallet=QueuePublisher(settings.wallet_queue_url),
        order_status=QueuePublisher(settings.order_status_queue_url),
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    wired = ports()
    # An operator (or a test) may sweep with a shorter deadline: {"resolve_after_seconds": 0}. The lease is
    # not theirs to shorten: it is what keeps the sweep from failing an order an attempt is charging.
    resolve_after = int((event or {}).get("resolve_after_seconds", wired.settings.resolve_after_seconds))
    report = domain.recover_orders(
        now=datetime.now(UTC),
        resolve_after=timedelta(seconds=max(resolve_after, 0)),
        lease=timedelta(seconds=wired.settings.lease_seconds),
        retry_window=timedelta(seconds=wired.settings.retry_window_seconds),
        stuck_after=timedelta(seconds=wired.settings.stuck_after_seconds),
        store=wired.store,
        psp=wired.psp,
        wallet=wired.wallet,
        order_status=wired.order_status,
        out_of_time=lambda: context.get_remaining_time_in_millis() < wired.settings.stop_margin_seconds * 1000,
    )
    for status, count in report.resolved.items():
        metrics.add_metric(name=f"OrdersResolved{status.title()}", unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="OrdersStuck", unit=MetricUnit.Count, value=len(report.stuck))
    metrics.add_metric(name="RecoveryErrors", unit=MetricUnit.Count, value=len(report.errors))
    if report.stuck:
        logger.warning("orders stuck past the second deadline", extra={"payment_order_ids": report.stuck[:50]})
    for payment_order_id, error in list(report.errors.items())[:50]:
        logger.warning("order not recovered", extra={"payment_order_id": payment_order_id, "error": error})
    logger.info(
        "recovery sweep",
        extra={
            "examined": report.examined,
            "still_pending": report.still_pending,
            "leased": len(report.leased),
            "handed_on_again": len(report.handed_on_again),
            "awaiting_retry": len(report.awaiting_retry),
            "out_of_time": report.out_of_time,
        },
    )
    return {
        "examined": report.examined,
        "resolved": report.resolved,
        "still_pending": report.still_pending,
        "leased": len(report.leased),
        "handed_on_again": len(report.handed_on_again),
        "errors": len(report.errors),
        "stuck": len(report.stuck),
    }
