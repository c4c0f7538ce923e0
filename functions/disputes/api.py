"""Disputes read API."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.api import build_resolver, resolve_for_tenant
from functions.common.api_docs import read_responses
from functions.common.ids import ID_PATTERN
from functions.common.observability import logger, tracer
from functions.disputes import domain
from functions.disputes.models import DisputeList, DisputeView
from functions.disputes.settings import DisputesApiSettings
from functions.disputes.store import DynamoDisputeReader

app = build_resolver()


@functools.cache
def _reader() -> DynamoDisputeReader:
    return DynamoDisputeReader(DisputesApiSettings.from_env().disputes_table)


@app.get(
    "/v1/disputes",
    operation_id="list_disputes",
    summary="The disputes (chargebacks) of one payment order",
    responses=read_responses("The order's disputes, oldest first; none if it was never disputed."),
)
def list_disputes(payment_order_id: Annotated[str, Query(pattern=ID_PATTERN)]) -> DisputeList:
    return domain.list_disputes(payment_order_id, store=_reader())


@app.get(
    "/v1/disputes/<dispute_id>",
    operation_id="read_dispute",
    summary="Read a dispute: OPEN, WON or LOST",
    responses=read_responses("The dispute.", not_found="`resource_missing` (`not_found`): no dispute with this id."),
)
def read_dispute(dispute_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> DisputeView:
    return domain.get_dispute(dispute_id, store=_reader())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve_for_tenant(app, event, context, scoped=False)  # tenants: not scoped yet
