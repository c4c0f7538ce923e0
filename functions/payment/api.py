"""Payments API: create a payment (idempotent) and read it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.api import (
    IdempotencyKey,
    IdempotentOperations,
    build_resolver,
    caller_of,
    guard_request,
    resolve_for_tenant,
    tenant_of,
)
from functions.common.api_docs import (
    BODY_RULES,
    IN_PROGRESS,
    action_responses,
    create_responses,
    link,
    read_responses,
)
from functions.common.ids import ID_PATTERN
from functions.common.observability import correlate, logger, metrics, tracer
from functions.common.queues import QueuePublisher
from functions.common.tenants import scoped_id
from functions.payment import domain
from functions.payment.fulfilment import FulfilmentResponse, fulfil_order
from functions.payment.models import PaymentRequest, PaymentResponse
from functions.payment.settings import PaymentApiSettings
from functions.payment.store import DynamoPaymentStore
from functions.refund.store import DynamoChargedOrders, DynamoRefundedAmounts

app = build_resolver()


@functools.cache
def _api() -> tuple[DynamoPaymentStore, IdempotentOperations]:
    settings = PaymentApiSettings.from_env()
    return DynamoPaymentStore(settings.payments_table), IdempotentOperations(settings.idempotency_table)


@functools.cache
def _refunded_amounts() -> DynamoRefundedAmounts:
    return DynamoRefundedAmounts(PaymentApiSettings.from_env().refunds_table)


@dataclass(frozen=True)
class FulfilmentPorts:
    orders: DynamoChargedOrders
    holds_queue: QueuePublisher


@functools.cache
def _fulfilment_ports() -> FulfilmentPorts:
    settings = PaymentApiSettings.from_env()
    return FulfilmentPorts(
        orders=DynamoChargedOrders(settings.executor_table, settings.payments_table),
        holds_queue=QueuePublisher(settings.wallet_holds_queue_url),
    )


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
    tenant = tenant_of(app)

    def execute() -> dict[str, Any]:
        payment = domain.accept_payment(
            domain.scoped_request(request, tenant), tenant_id=tenant, caller=caller, idempotency_key=key, store=store
        )
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
    payment_id = scoped_id(tenant_of(app), payment_id)
    correlate(payment_id)
    payment = domain.get_payment(payment_id, store=store)
    refunded = _refunded_amounts().refunded([o.payment_order_id for o in payment.orders])
    return PaymentResponse.of(payment, refunded)


@app.post(
    "/v1/payment-orders/<payment_order_id>/fulfil",
    operation_id="fulfil_payment_order",
    summary="Confirm a held order was fulfilled: release its seller's share from pending to available",
    responses=action_responses(
        "The release is requested: the share moves to the seller's available balance once, however often this "
        "is called (a no-op once the hold period has ended).",
        not_found="`resource_missing` (`not_found`): no payment order with this id.",
        conflict="`order_not_held`: the order was placed without `hold: until_fulfilled`; or `order_not_charged`: "
        "the order has not SUCCEEDED (yet).",
    ),
)
def fulfil_payment_order(payment_order_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> FulfilmentResponse:
    ports = _fulfilment_ports()
    payment_order_id = scoped_id(tenant_of(app), payment_order_id)
    logger.append_keys(payment_order_id=payment_order_id)
    fulfilled = fulfil_order(payment_order_id, orders=ports.orders, holds_queue=ports.holds_queue)
    correlate(fulfilled.payment_id, payment_order_id=payment_order_id)
    metrics.add_metric(name="OrdersFulfilled", unit=MetricUnit.Count, value=1)
    return fulfilled


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rejected = guard_request(event)
    if rejected is not None:
        return rejected
    _api()[1].config.register_lambda_context(context)
    return resolve_for_tenant(app, event, context)
