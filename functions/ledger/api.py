"""Ledger read API: entries and the trial balance."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.common.api import build_resolver, resolve_for_tenant
from functions.common.api_docs import INVALID, ONE_QUERY_PARAMETER_OF, read_responses
from functions.common.errors import InvalidRequest
from functions.common.ids import ID_PATTERN
from functions.common.observability import logger, tracer
from functions.ledger import domain
from functions.ledger.balances import trial_balance_of
from functions.ledger.settings import LedgerApiSettings
from functions.ledger.store import DynamoBalanceStore, DynamoLedgerStore

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
    return resolve_for_tenant(app, event, context, scoped=False)  # tenants: not scoped yet
