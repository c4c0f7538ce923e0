"""Refund service workers: the outbox dispatcher, the refund executor (the PSP call), the automatic refund of
orphan charges, and the scheduled recovery of refunds left PENDING (the refunds API is
functions/refund/api.py)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.dynamo import plain
from functions.common.observability import correlate, logger, metrics, tracer
from functions.common.queues import BatchOptions, QueuePublisher, consume_batch, record_model
from functions.common.refund_events import ExecuteRefund
from functions.executor.domain import OrderExecution
from functions.psp.breaker import GuardedPsp
from functions.psp.client import PspClient
from functions.psp.worker import batch_options, guarded_psp
from functions.refund import domain, recovery
from functions.refund.settings import (
    OrphanRefundSettings,
    RefundDispatcherSettings,
    RefundExecutorSettings,
    RefundRecoverySettings,
)
from functions.refund.store import REFUND_SK, DynamoRefundStore, refund_from_item


@dataclass(frozen=True)
class DispatcherPorts:
    refund_queue: QueuePublisher
    wallet: QueuePublisher


@functools.cache
def _dispatcher() -> DispatcherPorts:
    settings = RefundDispatcherSettings.from_env()
    return DispatcherPorts(
        refund_queue=QueuePublisher(settings.refund_queue_url),
        wallet=QueuePublisher(settings.wallet_refunds_queue_url),
    )


def _dispatch_record(record: DynamoDBRecord) -> None:
    image = record.dynamodb.new_image if record.dynamodb else None
    if not image or image.get("sk") != REFUND_SK:
        return  # the charges' refunded totals need no dispatch
    refund = refund_from_item(image)
    correlate(refund.payment_id, payment_order_id=refund.payment_order_id, refund_id=refund.refund_id)
    if record.event_name == DynamoDBRecordEventName.INSERT:
        _dispatcher().refund_queue.publish(
            ExecuteRefund(refund_id=refund.refund_id, payment_order_id=refund.payment_order_id)
        )
    elif record.event_name == DynamoDBRecordEventName.MODIFY:
        # Whichever writer decided it (the executor, a webhook, the sweep) and whether or not it lived to hand
        # on: the decision's wallet movements go out from the stream too (the wallet applies each once).
        domain.hand_on(refund, wallet=_dispatcher().wallet)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def dispatch_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Transactional outbox: every stored refund reaches the refund queue, and every debited refund's wallet
    movements reach the wallet, via the table's stream."""
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(event=event, record_handler=_dispatch_record, processor=processor, context=context)


@dataclass(frozen=True)
class ExecutorPorts:
    store: DynamoRefundStore
    psp: GuardedPsp
    wallet: QueuePublisher
    batch: BatchOptions


@functools.cache
def _executor() -> ExecutorPorts:
    settings = RefundExecutorSettings.from_env()
    return ExecutorPorts(
        store=DynamoRefundStore(settings.refunds_table),
        psp=guarded_psp(settings),
        wallet=QueuePublisher(settings.wallet_refunds_queue_url),
        batch=batch_options(settings),
    )


_EXECUTE_RECORD = record_model(ExecuteRefund)


def _execute(message: ExecuteRefund) -> None:
    logger.thread_safe_append_keys(refund_id=message.refund_id, payment_order_id=message.payment_order_id)
    wired = _executor()
    wired.psp.fail_fast()  # while the PSP's circuit is open the refund comes back later, untouched
    refund = domain.execute_refund(message, store=wired.store, psp=wired.psp, wallet=wired.wallet)
    logger.info("refund executed", extra={"status": refund.status, "psp_status": refund.psp_status})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def executor_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _EXECUTE_RECORD, _execute, _executor().batch)


@functools.cache
def _orphan_store() -> DynamoRefundStore:
    return DynamoRefundStore(OrphanRefundSettings.from_env().refunds_table)


def _orphan_record(record: DynamoDBRecord) -> None:
    image = record.dynamodb.new_image if record.dynamodb else None
    if not image:
        return
    order = OrderExecution.model_validate(plain(image))
    correlate(order.payment_id, payment_order_id=order.payment_order_id)
    refund = domain.refund_orphan_charge(order, store=_orphan_store())
    if refund is not None:
        logger.info("orphan charge refund", extra={"refund_id": refund.refund_id, "status": refund.status})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def orphan_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """The executor table's stream, filtered to orders carrying an orphan charge: each is refunded once."""
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(event=event, record_handler=_orphan_record, processor=processor, context=context)


@dataclass(frozen=True)
class RecoveryPorts:
    settings: RefundRecoverySettings
    store: DynamoRefundStore
    psp: PspClient
    refund_queue: QueuePublisher
    wallet: QueuePublisher


@functools.cache
def _recovery() -> RecoveryPorts:
    settings = RefundRecoverySettings.from_env()
    return RecoveryPorts(
        settings=settings,
        store=DynamoRefundStore(settings.refunds_table),
        psp=PspClient.from_settings(settings),
        refund_queue=QueuePublisher(settings.refund_queue_url),
        wallet=QueuePublisher(settings.wallet_refunds_queue_url),
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def recovery_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """On a schedule: refunds PENDING past the deadline are looked up at the PSP and settled."""
    wired = _recovery()
    settings = wired.settings
    # An operator (or a test) may sweep with a shorter deadline: {"resolve_after_seconds": 0}.
    resolve_after = int((event or {}).get("resolve_after_seconds", settings.resolve_after_seconds))
    report = recovery.recover_refunds(
        now=datetime.now(UTC),
        resolve_after=timedelta(seconds=max(resolve_after, 0)),
        stuck_after=timedelta(seconds=settings.stuck_after_seconds),
        retry_window=timedelta(seconds=settings.retry_window_seconds),
        store=wired.store,
        psp=wired.psp,
        refund_queue=wired.refund_queue,
        wallet=wired.wallet,
        out_of_time=lambda: context.get_remaining_time_in_millis() < settings.stop_margin_seconds * 1000,
    )
    for status, count in report.resolved.items():
        metrics.add_metric(name=f"RefundsResolved{status.title()}", unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="RefundsSentAgain", unit=MetricUnit.Count, value=len(report.sent_again))
    metrics.add_metric(name="RefundsStuck", unit=MetricUnit.Count, value=len(report.stuck))
    metrics.add_metric(name="RefundRecoveryErrors", unit=MetricUnit.Count, value=len(report.errors))
    if report.stuck:
        logger.warning("refunds stuck PENDING past the second deadline", extra={"refund_ids": report.stuck[:50]})
    for refund_id, error in list(report.errors.items())[:50]:
        logger.warning("refund not recovered", extra={"refund_id": refund_id, "error": error})
    summary = {
        "examined": report.examined,
        "resolved": report.resolved,
        "still_pending": len(report.still_pending),
        "sent_again": len(report.sent_again),
        "stuck": len(report.stuck),
        "errors": len(report.errors),
        "out_of_time": report.out_of_time,
    }
    logger.info("refund recovery sweep", extra=summary)
    return summary
