"""Payment service workers: the outbox dispatcher and order progress (the public API is
functions/payment/api.py)."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from functions.common.events import OrderStatusChanged
from functions.common.observability import correlate, logger, metrics, tracer
from functions.common.queues import BatchOptions, QueuePublisher, consume_batch, record_model
from functions.payment import domain
from functions.payment.settings import DispatcherSettings, OrderStatusSettings
from functions.payment.store import PAYMENT_SK, DynamoPaymentStore


@functools.cache
def _dispatcher() -> QueuePublisher:
    return QueuePublisher(DispatcherSettings.from_env().executor_queue_url)


def _dispatch_record(record: DynamoDBRecord) -> None:
    image = record.dynamodb.new_image if record.dynamodb else None
    if record.event_name != DynamoDBRecordEventName.INSERT or not image:
        return
    if image.get("sk") != PAYMENT_SK:
        return  # order-id guard items need no dispatch
    payment = DynamoPaymentStore.from_item(image)
    correlate(payment.payment_id)
    count = domain.dispatch_payment(payment, publisher=_dispatcher())
    logger.info("dispatched payment orders", extra={"orders": count})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def dispatch_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Transactional outbox: every stored payment reaches the executor queue via the table's stream."""
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(event=event, record_handler=_dispatch_record, processor=processor, context=context)


@functools.cache
def _order_store() -> DynamoPaymentStore:
    return DynamoPaymentStore(OrderStatusSettings.from_env().payments_table)


_ORDER_STATUS_RECORD = record_model(OrderStatusChanged)


def _count_outcome(change: domain.PaymentChange | None) -> None:
    if change is not None and change.concluded:
        status = change.after.status
        metrics.add_metric(name=f"Payments{status.title().replace('_', '')}", unit=MetricUnit.Count, value=1)


def _record_progress(event: OrderStatusChanged) -> None:
    correlate(event.payment_id, payment_order_id=event.payment_order_id)
    _count_outcome(domain.record_orders_progress([event], store=_order_store()))


# A grouped write gives up early under contention: its records then go one by one, with their own retries.
GROUPED_ATTEMPTS = 3


def _record_together(records: list[dict[str, Any]], context: LambdaContext) -> set[str]:
    """Fold each payment's events of this batch into it in one write (the orders of a checkout report
    together), before the records are handled one by one. Returns the bodies applied: their records
    then need nothing more. If a payment's write fails, its records go the usual way, one at a time,
    with their own retries and failure reports; so do all records once too little time is left."""
    by_payment: dict[str, list[tuple[str, OrderStatusChanged]]] = {}
    for raw in records:
        try:
            event = _ORDER_STATUS_RECORD.model_validate(raw).body
        except ValidationError:
            continue  # the per-record pass reports it as unreadable
        by_payment.setdefault(event.payment_id, []).append((event.model_dump_json(), event))
    options = BatchOptions()
    needed_ms = (options.record_seconds + options.margin_seconds) * 1000
    applied: set[str] = set()
    for payment_id, events in by_payment.items():
        if len(events) < 2:
            continue
        if context.get_remaining_time_in_millis() < needed_ms:
            break
        correlate(payment_id)
        try:
            change = domain.record_orders_progress(
                [e for _, e in events], store=_order_store(), attempts=GROUPED_ATTEMPTS
            )
        except Exception as error:  # noqa: BLE001 - each record is retried on its own, below, and fails there
            logger.info("events recorded one by one", extra={"error_type": type(error).__name__})
            continue
        finally:
            logger.remove_keys(["payment_id"])  # a later record's log lines carry its own
            logger.set_correlation_id(None)
        _count_outcome(change)
        applied.update(body for body, _ in events)
    return applied


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def order_status_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    applied = _record_together(event.get("Records", []), context)

    def record(order_event: OrderStatusChanged) -> None:
        if order_event.model_dump_json() not in applied:
            _record_progress(order_event)

    return consume_batch(event, context, _ORDER_STATUS_RECORD, record)
