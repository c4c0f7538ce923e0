"""Disputes Lambdas: the worker that applies the PSP's dispute notices (from the disputes queue), and the
read API."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.api import build_resolver
from functions.common.api_docs import read_responses
from functions.common.ids import ID_PATTERN
from functions.common.observability import logger, metrics, tracer
from functions.common.queues import QueuePublisher, consume_batch, record_model
from functions.disputes import domain
from functions.disputes.models import DisputeList, DisputeNotice, DisputeView
from functions.disputes.settings import DisputesApiSettings, DisputesSettings
from functions.disputes.store import DynamoDisputeReader, DynamoDisputeStore

# A notice that contradicts its stored dispute: dead-lettered, and alarmed on in infra.
DISPUTE_CONFLICTS_METRIC = "DisputeConflicts"


@dataclass(frozen=True)
class WorkerPorts:
    store: DynamoDisputeStore
    ledger: QueuePublisher


@functools.cache
def _worker_ports() -> WorkerPorts:
    settings = DisputesSettings.from_env()
    return WorkerPorts(
        store=DynamoDisputeStore(settings.disputes_table, settings.wallet_table),
        ledger=QueuePublisher(settings.ledger_postings_queue_url),
    )


_RECORD = record_model(DisputeNotice)


def _apply(notice: DisputeNotice) -> None:
    logger.append_keys(psp_dispute_id=notice.psp_dispute_id, payment_order_id=notice.payment_order_id)
    ports = _worker_ports()
    try:
        dispute = domain.apply_notice(notice, store=ports.store, ledger=ports.ledger)
    except domain.DisputeConflict:
        metrics.add_metric(name=DISPUTE_CONFLICTS_METRIC, unit=MetricUnit.Count, value=1)
        raise
    logger.info("dispute notice", extra={"dispute_id": dispute.dispute_id, "status": dispute.status})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _RECORD, _apply)


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
    return app.resolve(event, context)
