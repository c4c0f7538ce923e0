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

from functions.common.events import OrderStatusChanged
from functions.common.observability import correlate, logger, metrics, tracer
from functions.common.queues import QueuePublisher, consume_batch, record_model
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


def _record_progress(event: OrderStatusChanged) -> None:
    correlate(event.payment_id, payment_order_id=event.payment_order_id)
    payment = domain.record_order_progress(event, store=_order_store())
    if payment is not None and payment.status != "PROCESSING":
        metrics.add_metric(name=f"Payments{payment.status.title().replace('_', '')}", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def order_status_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _ORDER_STATUS_RECORD, _record_progress)
