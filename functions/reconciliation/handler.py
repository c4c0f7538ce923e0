"""Reconciliation Lambdas: settlement files (S3 notifications via SQS, and the large-file state machine's
messages on the same queue), the Distributed Map's row worker, and the runs API."""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel

from functions.common.api import build_resolver
from functions.common.api_docs import read_responses
from functions.common.errors import NotFound
from functions.common.observability import logger, metrics, tracer
from functions.reconciliation import domain
from functions.reconciliation.domain import (
    SETTLEMENT_COLUMNS,
    NotASettlementFile,
    ObjectRef,
    ReviewItem,
    Run,
    Tally,
    check_header,
    run_id_for,
)
from functions.reconciliation.settings import ReconciliationApiSettings, ReconciliationSettings
from functions.reconciliation.store import (
    DynamoClaimStore,
    DynamoOrderSource,
    DynamoOutcomeStore,
    DynamoRunStore,
    QueuePostingSink,
    ReviewQueue,
    first_line,
    head_object,
    object_lines,
    put_report,
    start_distributed,
    task_succeeded,
)

SETTINGS_MODELS = {
    "handler": ReconciliationSettings,
    "rows_handler": ReconciliationSettings,
    "api_handler": ReconciliationApiSettings,
}
DISTRIBUTED_METADATA = "reconcile-mode"  # x-amz-meta-reconcile-mode: distributed forces the Map path


class Service:
    """The ports of one function instance, built once per cold start."""

    def __init__(self, settings: ReconciliationSettings) -> None:
        self.settings = settings
        self.runs = DynamoRunStore(settings.runs_table)
        self.orders = DynamoOrderSource(settings.executor_table)
        self.claims = DynamoClaimStore(settings.settlements_table)
        self.outcomes = DynamoOutcomeStore(settings.settlements_table)
        self.postings = QueuePostingSink(settings.ledger_postings_queue_url)
        self.review = ReviewQueue(settings.review_queue_url)
        self.grace = timedelta(seconds=settings.cutoff_grace_seconds)


@functools.cache
def _service() -> Service:
    return Service(ReconciliationSettings.from_env())


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _fail(service: Service, run: Run, error: str) -> Run:
    failed = run.model_copy(update={"status": "FAILED", "error": error, "completed_at": _now()})
    service.runs.put(failed)
    metrics.add_metric(name="SettlementFileFailed", unit=MetricUnit.Count, value=1)
    logger.warning("settlement file rejected", extra={"run_id": run.run_id, "error": error})
    return failed


def _finish(service: Service, run: Run, tally: Tally) -> Run:
    """Reports under reports/<run>/, review items, metrics, then the completed run record (last, so a
    crash before it re-runs the whole idempotent sequence)."""
    domain.find_missing(tally, orders=service.orders, claims=service.claims, grace=service.grace)
    prefix = f"{service.settings.report_prefix}{run.run_id}/"
    bucket = run.source.bucket
    report = ObjectRef(bucket=bucket, key=f"{prefix}summary.json")
    breaks_report = ObjectRef(bucket=bucket, key=f"{prefix}breaks.csv")
    completed = domain.complete_run(run, tally, completed_at=_now()).model_copy(
        update={"report": report, "breaks_report": breaks_report}
    )
    put_report(bucket, breaks_report.key, tally.breaks_csv(), "text/csv")
    put_report(bucket, report.key, completed.model_dump_json(indent=2).encode(), "application/json")
    review = [item.model_copy(update={"report_key": breaks_report.key}) for item in tally.review]
    if tally.review_overflow:
        review.append(
            ReviewItem(
                run_id=run.run_id,
                break_class="more_breaks",
                line=None,
                psp_reference="",
                merchant_reference="",
                detail=f"{tally.review_overflow} more breaks: see the breaks report",
                report_key=breaks_report.key,
            )
        )
    service.review.send(review)
    metrics.add_metric(name="SettlementRows", unit=MetricUnit.Count, value=tally.rows)
    metrics.add_metric(name="SettlementMatched", unit=MetricUnit.Count, value=tally.matched)
    for klass, count in tally.breaks.items():
        metrics.add_metric(name=f"SettlementBreaks_{klass}", unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="SettlementTemporaryBreaks", unit=MetricUnit.Count, value=sum(tally.temporary.values()))
    service.runs.put(completed)
    logger.info(
        "reconciliation run completed",
        extra={"run_id": run.run_id, "rows": tally.rows, "matched": tally.matched, "breaks": tally.breaks},
    )
    return completed


def reconcile_object(source: ObjectRef, *, service: Service) -> Run:
    """One S3 object: idempotent per (bucket, key, ETag)."""
    try:
        head = head_object(source)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NoSuchVersion"):
            raise
        head = None
    if head is not None and not source.etag:
        source = source.model_copy(update={"etag": str(head.get("ETag", "")).strip('"')})
    run_id = run_id_for(source)
    existing = service.runs.get(run_id)
    if existing is not None and (existing.status != "RUNNING" or existing.mode == "distributed"):
        return existing  # a redelivered notification, or the same file dropped again
    run = existing or Run(run_id=run_id, source=source, created_at=_now())
    if head is None:
        return _fail(service, run, "the settlement object does not exist (deleted before it was read)")
    large = int(head.get("ContentLength", 0)) > service.settings.distributed_threshold_bytes
    if large or head.get("Metadata", {}).get(DISTRIBUTED_METADATA) == "distributed":
        try:
            check_header(first_line(source).split(","))
        except NotASettlementFile as error:
            return _fail(service, run, f"not a settlement file: {error}")
        run = run.model_copy(update={"mode": "distributed"})
        service.runs.put(run)
        start_distributed(service.settings.state_machine_arn, run_id, source)
        logger.info("large settlement file: Distributed Map started", extra={"run_id": run_id})
        return run
    service.runs.put(run)
    try:
        with object_lines(source) as lines:  # closed, and its connection released, however the run ends
            tally = domain.reconcile_lines(
                run, lines, orders=service.orders, claims=service.claims, postings=service.postings
            )
    except NotASettlementFile as error:
        return _fail(service, run, f"not a settlement file: {error}")
    return _finish(service, run, tally)


def finalize_distributed(run_id: str, *, service: Service) -> Run | None:
    run = service.runs.get(run_id)
    if run is None or run.status != "RUNNING":
        return run
    tally = Tally(run_id)
    for outcome in service.outcomes.outcomes(run_id):
        tally.add(outcome)
    return _finish(service, run, tally)


def _record(record: SQSRecord) -> None:
    body = record.json_body
    if isinstance(body, dict) and "finalize" in body:
        finalize_distributed(str(body["finalize"]["run_id"]), service=_service())
        return
    if isinstance(body, dict) and "map_failed" in body:
        run = _service().runs.get(str(body["map_failed"]["run_id"]))
        if run is not None and run.status == "RUNNING":
            cause = json.dumps(body.get("error", {}))[:500]
            _fail(_service(), run, f"the Distributed Map failed: {cause}")
        return
    notification = S3Event(body)
    if notification.get("Event") == "s3:TestEvent":
        return  # S3 sends one when the notification is configured
    for s3_record in notification.records:
        source = ObjectRef(
            bucket=s3_record.s3.bucket.name,
            key=unquote_plus(s3_record.s3.get_object.key),
            version=s3_record.s3.get_object.version_id or None,
            etag=(s3_record.s3.get_object.etag or "").strip('"') or None,
        )
        logger.append_keys(settlement_key=source.key)
        run = reconcile_object(source, service=_service())
        logger.info("reconciliation run", extra={"run_id": run.run_id, "status": run.status, "rows": run.rows})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)


# --- the Distributed Map's row worker ----------------------------------------------------------------


class RowTask(BaseModel):
    run_id: str
    line: int
    row: dict[str, str]
    task_token: str


def reconcile_row_tasks(tasks: list[RowTask], *, service: Service) -> None:
    """Rows of one batch, per run: classified and claimed like a chunk of the stream path (but each matched
    row booked as its own journal: SQS makes up batches as it likes), their outcomes stored for the
    finaliser, then each row's task reported done to the state machine."""
    by_run: dict[str, list[RowTask]] = defaultdict(list)
    for task in tasks:
        by_run[task.run_id].append(task)
    for run_id, run_tasks in by_run.items():
        run_tasks.sort(key=lambda t: t.line)
        parsed = [domain.parse_fields(t.line, [t.row.get(c, "") for c in SETTLEMENT_COLUMNS]) for t in run_tasks]
        chunk = domain.classify_chunk(
            run_id, parsed, orders=service.orders, claims=service.claims, postings=service.postings, per_row=True
        )
        service.outcomes.save(run_id, chunk.outcomes)
        for task in run_tasks:
            task_succeeded(task.task_token, {"line": task.line})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def rows_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """The batch is one chunk: if it fails, every record is retried (all writes are idempotent)."""
    records = event.get("Records", [])
    try:
        reconcile_row_tasks([RowTask.model_validate_json(r["body"]) for r in records], service=_service())
    except Exception:  # noqa: BLE001 - any failure retries the whole batch; the writes are idempotent
        logger.exception("settlement rows failed; the batch will be retried")
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}
    return {"batchItemFailures": []}


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
    return app.resolve(event, context)
