"""Event worker entry points, in the order an event passes them:
- recorder: the owning services' table streams -> one stored event per outcome (conditional write);
- publisher: the events table's stream (new items only) -> the EventBridge bus;
- fan-out: the bus's rule, through SQS -> one delivery message per subscribed endpoint;
- delivery: the signed POST, retried with backoff by age, dead-lettered after 3 days."""

from __future__ import annotations

import functools
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from functions.common.dynamo import plain
from functions.common.kms_sealer import KmsSecretSealer
from functions.common.observability import METRICS_LOCK, logger, metrics, tracer
from functions.common.queues import BatchOptions, QueuePublisher, SqsFailedRecords, consume_batch, record_model
from functions.events import delivery, recorder
from functions.events.bus import EventBusPublisher
from functions.events.endpoint_store import DynamoEndpointStore
from functions.events.event_store import DynamoEventStore, record_of
from functions.events.http_transport import Urllib3Transport
from functions.events.models import DeliveryMessage, TenantEvent
from functions.events.settings import (
    EventDeliverySettings,
    EventFanoutSettings,
    EventPublisherSettings,
    EventRecorderSettings,
)
from functions.events.sources import SOURCES

# Besides the POST, one endpoint read (and a KMS call when its secret is not cached) per delivery.
DELIVERY_OVERHEAD_SECONDS = 5.0


def _table_of(stream_arn: str) -> str:
    """arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label> -> <name>"""
    return stream_arn.split(":table/", 1)[1].split("/", 1)[0]


@functools.cache
def _recorder() -> tuple[dict[str, str], DynamoEventStore]:
    settings = EventRecorderSettings.from_env()
    return settings.source_by_table(), DynamoEventStore(settings.events_table)


def _record_change(record: DynamoDBRecord) -> None:
    image = record.dynamodb.new_image if record.dynamodb else None
    if record.event_name == DynamoDBRecordEventName.REMOVE or not image or record.dynamodb is None:
        return
    sources, events = _recorder()
    source = sources[_table_of(record.event_source_arn or "")]
    created = int(record.dynamodb.approximate_creation_date_time or time.time())
    outcome, sourced = recorder.record_change(
        SOURCES[source], plain(image), created, events=events, recorded_at_ms=int(time.time() * 1000)
    )
    if sourced is None:
        return
    extra = {"source": source, "event_id": sourced.event.id, "event_type": sourced.event.type}
    if outcome == "conflict":
        # The same id with other content: never written over; a person looks (the metric's alarm).
        logger.error("an outcome's event was recorded before with other content", extra=extra)
        metrics.add_metric(name="EventConflicts", unit=MetricUnit.Count, value=1)
    else:
        logger.info(f"event {outcome}", extra=extra)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def record_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(event=event, record_handler=_record_change, processor=processor, context=context)


@functools.cache
def _publisher() -> EventBusPublisher:
    return EventBusPublisher(EventPublisherSettings.from_env().event_bus_name)


def _publish_record(record: DynamoDBRecord) -> None:
    image = record.dynamodb.new_image if record.dynamodb else None
    if record.event_name != DynamoDBRecordEventName.INSERT or not image:
        return  # events are written once; only their insertion publishes
    stored = record_of(image)
    _publisher().publish(TenantEvent(tenant_id=stored.tenant_id, event=stored.event))
    logger.info("event published", extra={"event_id": stored.event.id, "event_type": stored.event.type})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def publish_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """The events table is the outbox: each new event reaches the bus through its own stream record."""
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(event=event, record_handler=_publish_record, processor=processor, context=context)


class BusEnvelope(BaseModel):
    """What an EventBridge rule puts on its SQS target: the bus's envelope around our detail."""

    model_config = ConfigDict(extra="ignore")

    detail: TenantEvent


@functools.cache
def _fanout() -> tuple[DynamoEndpointStore, QueuePublisher]:
    settings = EventFanoutSettings.from_env()
    return DynamoEndpointStore(settings.endpoints_table), QueuePublisher(settings.delivery_queue_url)


_BUS_RECORD = record_model(BusEnvelope)


def _fan_out(envelope: BusEnvelope) -> None:
    endpoints, queue = _fanout()
    count = delivery.fan_out(envelope.detail, endpoints=endpoints, queue=queue)
    logger.info("event fanned out", extra={"event_id": envelope.detail.event.id, "deliveries": count})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def fanout_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _BUS_RECORD, _fan_out)


@functools.cache
def _delivery() -> tuple[EventDeliverySettings, DynamoEndpointStore, KmsSecretSealer, Urllib3Transport]:
    settings = EventDeliverySettings.from_env()
    return (
        settings,
        DynamoEndpointStore(settings.endpoints_table),
        KmsSecretSealer(settings.secrets_key_arn),
        Urllib3Transport(settings.timeout_seconds, loopback_only=settings.loopback_only),
    )


@functools.cache
def _delivery_options() -> BatchOptions:
    settings = _delivery()[0]
    return BatchOptions(
        concurrency=settings.batch_concurrency,
        record_seconds=settings.timeout_seconds + DELIVERY_OVERHEAD_SECONDS,
        failed_records=SqsFailedRecords(settings.retry_policy, settings.dead_letter_queue_url),
    )


_DELIVERY_RECORD = record_model(DeliveryMessage)


def _deliver(message: DeliveryMessage) -> None:
    _, endpoints, sealer, transport = _delivery()
    extra = {"event_id": message.event.id, "endpoint_id": message.endpoint_id, "event_type": message.event.type}
    try:
        outcome = delivery.deliver(
            message, endpoints=endpoints, sealer=sealer, transport=transport, now=int(time.time())
        )
    except delivery.EndpointRefused as refused:
        with METRICS_LOCK:
            metrics.add_metric(name="WebhookDeliveriesRefused", unit=MetricUnit.Count, value=1)
        logger.info("endpoint refused the event", extra={**extra, "status": refused.status})
        raise
    if outcome == "delivered":
        with METRICS_LOCK:
            metrics.add_metric(name="WebhookDeliveries", unit=MetricUnit.Count, value=1)
    logger.info(f"delivery {outcome}", extra=extra)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def delivery_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _DELIVERY_RECORD, _deliver, _delivery_options())
