"""Payment service Lambda entry points: the public API, the outbox dispatcher, order progress."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.api import IdempotencyKey, IdempotentOperations, build_resolver, caller_of, guard_request
from functions.common.api_docs import BODY_RULES, IN_PROGRESS, create_responses, link, read_responses
from functions.common.events import OrderStatusChanged
from functions.common.observability import correlate, logger, metrics, tracer
from functions.common.queues import QueuePublisher, consume_batch, record_model
from functions.payment import domain
from functions.payment.models import PaymentRequest, PaymentResponse
from functions.payment.settings import DispatcherSettings, OrderStatusSettings, PaymentApiSettings
from functions.payment.store import PAYMENT_SK, DynamoPaymentStore
from functions.refund.store import DynamoRefundedAmounts

app = build_resolver()


@functools.cache
def _api() -> tuple[DynamoPaymentStore, IdempotentOperations]:
    settings = PaymentApiSettings.from_env()
    return DynamoPaymentStore(settings.payments_table), IdempotentOperations(settings.idempotency_table)


@functools.cache
def _refunded_amounts() -> DynamoRefundedAmounts:
    return DynamoRefundedAmounts(PaymentApiSettings.from_env().refunds_table)


@app.post(
    "/v1/payments",
    operation_id="create_payment",
    summary="Create a payment for a checkout (one order per seller)",
    responses=create_responses(
        PaymentResponse,
        "Accepted: the orders are charged asynchronously; read the payment to follow them.",
        links={
            "ReadPayment": link("read_payment", "The payment just created.", payment_id="$response.body#/payment_id"),
            "ReadFirstSellerWallet": link(
                "read_wallet", "The first order's seller.", seller_id="$response.body#/orders/0/seller_id"
            ),
        },
        conflict=f"{IN_PROGRESS} Or `duplicate_payment_order`: an order's payment_order_id belongs to an earlier "
        "payment (`param` names the order).",
    ),
)
def create_payment(
    request: Annotated[PaymentRequest, Body(description=BODY_RULES)], key: IdempotencyKey
) -> Response[Any]:
    store, operations = _api()
    caller = caller_of(app)

    def execute() -> dict[str, Any]:
        payment = domain.accept_payment(request, caller=caller, idempotency_key=key, store=store)
        correlate(payment.payment_id)
        metrics.add_metric(name="PaymentsAccepted", unit=MetricUnit.Count, value=1)
        return PaymentResponse.of(payment).model_dump(mode="json")

    return operations.run("create_payment", caller, key, request.model_dump(mode="json"), execute)


@app.get(
    "/v1/payments/<payment_id>",
    operation_id="read_payment",
    summary="Read a payment and its orders",
    responses=read_responses(
        "The payment and its orders.", not_found="`resource_missing` (`not_found`): no payment with this id."
    ),
)
def read_payment(payment_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,80}$")]) -> PaymentResponse:
    store, _ = _api()
    correlate(payment_id)
    payment = domain.get_payment(payment_id, store=store)
    refunded = _refunded_amounts().refunded([o.payment_order_id for o in payment.orders])
    return PaymentResponse.of(payment, refunded)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rejected = guard_request(event)
    if rejected is not None:
        return rejected
    _api()[1].config.register_lambda_context(context)
    return app.resolve(event, context)


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
