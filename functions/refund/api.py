"""Refunds API: create a refund (idempotent) and read it."""

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
)
from functions.common.api_docs import BODY_RULES, IN_PROGRESS, KEY_REUSED, create_responses, link, read_responses
from functions.common.observability import correlate, logger, metrics, tracer
from functions.refund import domain
from functions.refund.models import RefundRequest, RefundResponse
from functions.refund.settings import (
    RefundApiSettings,
)
from functions.refund.store import DynamoChargedOrders, DynamoRefundStore

app = build_resolver()


@dataclass(frozen=True)
class ApiPorts:
    store: DynamoRefundStore
    orders: DynamoChargedOrders
    operations: IdempotentOperations


@functools.cache
def _api() -> ApiPorts:
    settings = RefundApiSettings.from_env()
    return ApiPorts(
        store=DynamoRefundStore(settings.refunds_table),
        orders=DynamoChargedOrders(settings.executor_table, settings.payments_table),
        operations=IdempotentOperations(settings.idempotency_table),
    )


@app.post(
    "/v1/refunds",
    operation_id="create_refund",
    summary="Refund part or the rest of a succeeded payment order",
    responses=create_responses(
        RefundResponse,
        "Accepted: the refund is PENDING; read it to follow it to SUCCEEDED or FAILED.",
        links={"ReadRefund": link("read_refund", "The refund just requested.", refund_id="$response.body#/refund_id")},
        conflict=IN_PROGRESS,
        refused=f"{KEY_REUSED} Or `refund_exceeds_charge` (`invalid_request_error`): the amount is more than what "
        "is left of the order's charge; or `order_not_refundable`: the order has not SUCCEEDED.",
    )
    | {404: read_responses("", not_found="`resource_missing` (`not_found`): no payment order with this id.")[404]},
)
def create_refund(
    request: Annotated[RefundRequest, Body(description=BODY_RULES)], key: IdempotencyKey
) -> Response[Any]:
    wired = _api()
    caller = caller_of(app)

    def execute() -> dict[str, Any]:
        refund = domain.request_refund(
            request, caller=caller, idempotency_key=key, store=wired.store, orders=wired.orders
        )
        correlate(refund.payment_id, payment_order_id=refund.payment_order_id, refund_id=refund.refund_id)
        metrics.add_metric(name="RefundsAccepted", unit=MetricUnit.Count, value=1)
        return RefundResponse.of(refund).model_dump(mode="json")

    return wired.operations.run("create_refund", caller, key, request.model_dump(mode="json"), execute)


@app.get(
    "/v1/refunds/<refund_id>",
    operation_id="read_refund",
    summary="Read a refund",
    responses=read_responses("The refund.", not_found="`resource_missing` (`not_found`): no refund with this id."),
)
def read_refund(refund_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,80}$")]) -> RefundResponse:
    return RefundResponse.of(domain.get_refund(refund_id, store=_api().store))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rejected = guard_request(event)
    if rejected is not None:
        return rejected
    _api().operations.config.register_lambda_context(context)
    return resolve_for_tenant(app, event, context, scoped=False)  # tenants: not scoped yet
