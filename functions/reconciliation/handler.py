"""Reconciliation Lambdas: S3 (via SQS) notifications of settlement files, and the runs API."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.common.api import build_resolver
from functions.common.errors import NotFound
from functions.common.observability import logger, metrics, tracer
from functions.reconciliation.domain import NotASettlementFile, ObjectRef, Run, run_id_for, settlement_rows
from functions.reconciliation.settings import ReconciliationApiSettings, ReconciliationSettings
from functions.reconciliation.store import DynamoRunStore, object_lines

SETTINGS_MODELS = {"handler": ReconciliationSettings, "api_handler": ReconciliationApiSettings}


@functools.cache
def _runs() -> DynamoRunStore:
    return DynamoRunStore(ReconciliationSettings.from_env().runs_table)


def reconcile_object(source: ObjectRef, *, runs: DynamoRunStore) -> Run:
    run_id = run_id_for(source)
    existing = runs.get(run_id)
    if existing is not None:
        return existing  # a redelivered notification: one run per object version
    run = Run(run_id=run_id, source=source, created_at=datetime.now(UTC).isoformat())
    try:
        run.rows = sum(1 for _ in settlement_rows(object_lines(source)))
    except (NotASettlementFile, ValueError) as error:
        run.status, run.error = "FAILED", f"not a settlement file: {error}"
    runs.put(run)
    return run


def _record(record: SQSRecord) -> None:
    notification = S3Event(record.json_body)
    if notification.get("Event") == "s3:TestEvent":
        return  # S3 sends one when the notification is configured
    for s3_record in notification.records:
        source = ObjectRef(
            bucket=s3_record.s3.bucket.name,
            key=unquote_plus(s3_record.s3.get_object.key),
            version=s3_record.s3.get_object.version_id,
            etag=s3_record.s3.get_object.etag,
        )
        logger.append_keys(settlement_key=source.key)
        run = reconcile_object(source, runs=_runs())
        logger.info("reconciliation run", extra={"run_id": run.run_id, "status": run.status, "rows": run.rows})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)


app = build_resolver()


class RunsResponse(BaseModel):
    runs: list[Run]


@functools.cache
def _read_runs() -> DynamoRunStore:
    return DynamoRunStore(ReconciliationApiSettings.from_env().runs_table)


@app.get("/v1/reconciliations", summary="Recent reconciliation runs, newest first")
def list_runs(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> RunsResponse:
    return RunsResponse(runs=_read_runs().list_runs(limit))


@app.get("/v1/reconciliations/<run_id>", summary="One reconciliation run")
def read_run(run_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,80}$")]) -> Run:
    run = _read_runs().get(run_id)
    if run is None:
        raise NotFound(f"No reconciliation run {run_id}.", param="run_id")
    return run


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
