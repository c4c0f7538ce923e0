"""Ledger Lambdas: the append-only booking consumers (the read API is functions/ledger/api.py)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.events import JournalPosting, OrderCharged
from functions.common.observability import correlate, logger, metrics, tracer
from functions.common.queues import QueuePublisher, consume_batch, record_model
from functions.ledger import domain
from functions.ledger.journals import DynamoJournalReader
from functions.ledger.policy import PostingRefused
from functions.ledger.settings import LedgerPostingsSettings, LedgerSettings
from functions.ledger.store import DynamoLedgerStore

# Published by both booking functions (services "ledger" and "ledger-postings"); alarmed on in infra.
JOURNAL_CONFLICTS_METRIC = "LedgerJournalConflicts"
POSTINGS_REFUSED_METRIC = "LedgerPostingsRefused"


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


@dataclass(frozen=True)
class BookingPorts:
    store: DynamoLedgerStore
    journals: DynamoJournalReader
    order_status: QueuePublisher


@functools.cache
def _booking_ports() -> BookingPorts:
    settings = LedgerSettings.from_env()
    return BookingPorts(
        store=DynamoLedgerStore(settings.ledger_table, settings.balances_table),
        journals=DynamoJournalReader(settings.ledger_table),
        order_status=QueuePublisher(settings.order_status_queue_url),
    )


_RECORD = record_model(OrderCharged)


def _book(charge: OrderCharged) -> None:
    correlate(charge.payment_id, payment_order_id=charge.payment_order_id)
    ports = _booking_ports()
    try:
        appended = domain.book_charge(
            charge, store=ports.store, journals=ports.journals, order_status=ports.order_status
        )
    except domain.JournalConflict:
        _count(JOURNAL_CONFLICTS_METRIC)
        raise
    logger.info("ledger booking", extra={"appended_now": appended})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _RECORD, _book)


@dataclass(frozen=True)
class PostingsPorts:
    store: DynamoLedgerStore
    journals: DynamoJournalReader


@functools.cache
def _postings_ports() -> PostingsPorts:
    settings = LedgerPostingsSettings.from_env()
    return PostingsPorts(
        store=DynamoLedgerStore(settings.ledger_table, settings.balances_table),
        journals=DynamoJournalReader(settings.ledger_table),
    )


_POSTING_RECORD = record_model(JournalPosting)


def _book_posting(posting: JournalPosting) -> None:
    logger.append_keys(journal_kind=posting.kind, business_id=posting.business_id, producer=posting.producer)
    ports = _postings_ports()
    try:
        appended = domain.book_posting(posting, store=ports.store, journals=ports.journals)
    except PostingRefused:
        _count(POSTINGS_REFUSED_METRIC)
        raise
    except domain.JournalConflict:
        _count(JOURNAL_CONFLICTS_METRIC)
        raise
    logger.info("ledger posting", extra={"appended_now": appended, "lines": len(posting.lines)})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def postings_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _POSTING_RECORD, _book_posting)
