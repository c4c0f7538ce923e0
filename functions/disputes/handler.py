"""Disputes Lambda: the worker that applies the PSP's dispute notices (from the disputes queue); the read
API is functions/disputes/api.py."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.observability import logger, metrics, tracer
from functions.common.queues import QueuePublisher, consume_batch, record_model
from functions.disputes import domain
from functions.disputes.models import DisputeNotice
from functions.disputes.settings import DisputesSettings
from functions.disputes.store import DynamoDisputeStore

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
