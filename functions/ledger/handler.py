"""Ledger Lambdas: the append-only booking consumer and the read API."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.common.api import build_resolver
from functions.common.api_docs import INVALID, ONE_QUERY_PARAMETER_OF, read_responses
from functions.common.errors import InvalidRequest
from functions.common.events import JournalPosting, OrderCharged
from functions.common.ids import ID_PATTERN
from functions.common.observability import correlate, logger, metrics, tracer
from functions.common.queues import QueuePublisher, consume_batch, record_model
from functions.ledger import domain
from functions.ledger.balances import trial_balance_of
from functions.ledger.journals import DynamoJournalReader
from functions.ledger.policy import PostingRefused
from functions.ledger.settings import LedgerApiSettings, LedgerPostingsSettings, LedgerSettings
from functions.ledger.store import DynamoBalanceStore, DynamoLedgerStore

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


app = build_resolver()


class EntriesResponse(BaseModel):
    entries: list[domain.Entry]


@dataclass(frozen=True)
class ApiPorts:
    store: DynamoLedgerStore
    balances: DynamoBalanceStore


@functools.cache
def _api_ports() -> ApiPorts:
    settings = LedgerApiSettings.from_env()
    return ApiPorts(
        store=DynamoLedgerStore(settings.ledger_table, settings.balances_table),
        balances=DynamoBalanceStore(settings.balances_table),
    )


@app.get(
    "/v1/ledger/entries",
    operation_id="list_ledger_entries",
    summary="Ledger entries of one payment order or one account",
    responses=read_responses(
        "The entries, oldest first.",
        invalid=f"{INVALID} Also `invalid_request`: give exactly one of payment_order_id or account.",
    ),
    openapi_extensions={ONE_QUERY_PARAMETER_OF: ["payment_order_id", "account"]},
)
def list_entries(
    payment_order_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    account: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_:-]{1,100}$")] = None,
) -> EntriesResponse:
    if (payment_order_id is None) == (account is None):
        raise InvalidRequest("Give exactly one of payment_order_id or account.", param="payment_order_id")
    store = _api_ports().store
    entries = store.by_payment_order(payment_order_id) if payment_order_id else store.by_account(account or "")
    return EntriesResponse(entries=entries)


@app.get(
    "/v1/ledger/trial-balance",
    operation_id="read_trial_balance",
    summary="Debits and credits per currency, and whether they balance",
    responses=read_responses("Totals per currency.", invalid=None),
)
def read_trial_balance() -> domain.TrialBalance:
    return trial_balance_of(_api_ports().balances.all_balances())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
