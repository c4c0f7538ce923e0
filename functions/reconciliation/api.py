"""Reconciliation runs API."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.common.api import build_resolver, resolve_for_tenant
from functions.common.api_docs import read_responses
from functions.common.errors import NotFound
from functions.common.observability import logger, tracer
from functions.reconciliation.models import Run
from functions.reconciliation.settings import (
    ReconciliationApiSettings,
)
from functions.reconciliation.store import (
    DynamoRunStore,
)

# --- API ---------------------------------------------------------------------------------------------

app = build_resolver()


class RunsResponse(BaseModel):
    runs: list[Run]


@functools.cache
def _read_runs() -> DynamoRunStore:
    return DynamoRunStore(ReconciliationApiSettings.from_env().runs_table)


@app.get(
    "/v1/reconciliations",
    operation_id="list_reconciliations",
    summary="Recent reconciliation runs, newest first",
    responses=read_responses("Up to `limit` runs, newest first."),
)
def list_runs(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> RunsResponse:
    return RunsResponse(runs=_read_runs().list_runs(limit))


@app.get(
    "/v1/reconciliations/<run_id>",
    operation_id="read_reconciliation",
    summary="One reconciliation run",
    responses=read_responses(
        "The run, its tallies and its reports.",
        not_found="`resource_missing` (`not_found`): no reconciliation run with this id.",
    ),
)
def read_run(run_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,80}$")]) -> Run:
    run = _read_runs().get(run_id)
    if run is None:
        raise NotFound(f"No reconciliation run {run_id}.", param="run_id")
    return run


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve_for_tenant(app, event, context, scoped=False)  # tenants: not scoped yet
