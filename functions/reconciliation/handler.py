"""Reconciliation Lambdas: the file queue (S3 notifications of settlement files, and the large-file state
machine's messages), the Distributed Map's row worker and the settlement deadline; the runs API is
functions/reconciliation/api.py."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.observability import logger, metrics, tracer
from functions.common.queues import consume_batch, record_model
from functions.reconciliation import domain
from functions.reconciliation.deadline import check_day
from functions.reconciliation.messages import (
    FileQueueMessage,
    FinalizeRun,
    MapFailed,
    RowTask,
    S3Notification,
    S3TestEvent,
    ScheduledCheck,
)
from functions.reconciliation.models import RunChange, RunPolicy
from functions.reconciliation.ports import RecordSource, RunPorts
from functions.reconciliation.records_store import (
    DISPUTES_OPENED,
    DISPUTES_WON,
    PAYOUTS,
    REFUNDS,
    DynamoRecords,
    S3DayFiles,
)
from functions.reconciliation.settings import (
    ReconciliationSettings,
    SettlementDeadlineSettings,
)
from functions.reconciliation.store import (
    DynamoClaimStore,
    DynamoOrderSource,
    DynamoOutcomeStore,
    DynamoRunStore,
    QueuePostingSink,
    ReviewQueue,
    S3SettlementFiles,
    SpooledBreaksCsv,
    StepFunctionsLargeFileRuns,
)


@functools.cache
def _settings() -> ReconciliationSettings:
    return ReconciliationSettings.from_env()


def _record_sources(settings: ReconciliationSettings) -> dict[str, RecordSource]:
    """Each row type's records, from the services that are wired in (an empty table name: not yet)."""
    sources: dict[str, RecordSource] = {"payout": DynamoRecords(settings.payouts_table, PAYOUTS)}
    if settings.refunds_table:
        sources["refund"] = DynamoRecords(settings.refunds_table, REFUNDS)
    if settings.disputes_table:
        sources["dispute"] = DynamoRecords(settings.disputes_table, DISPUTES_OPENED)
        sources["dispute_reversal"] = DynamoRecords(settings.disputes_table, DISPUTES_WON)
    return sources


@functools.cache
def _ports() -> RunPorts:
    settings = _settings()
    return RunPorts(
        runs=DynamoRunStore(settings.runs_table),
        orders=DynamoOrderSource(settings.executor_table),
        claims=DynamoClaimStore(settings.settlements_table),
        outcomes=DynamoOutcomeStore(settings.settlements_table),
        postings=QueuePostingSink(settings.ledger_postings_queue_url),
        review=ReviewQueue(settings.review_queue_url),
        files=S3SettlementFiles(),
        large_files=StepFunctionsLargeFileRuns(settings.state_machine_arn),
        new_breaks_log=SpooledBreaksCsv,
        records=_record_sources(settings),
    )


def _policy() -> RunPolicy:
    settings = _settings()
    return RunPolicy(
        grace=timedelta(seconds=settings.cutoff_grace_seconds),
        report_prefix=settings.report_prefix,
        distributed_threshold_bytes=settings.distributed_threshold_bytes,
    )


def _report(change: RunChange | None) -> None:
    """Metrics and logs of what a step did to a run."""
    if change is None:
        return
    run = change.run
    if change.change == "failed":
        metrics.add_metric(name="SettlementFileFailed", unit=MetricUnit.Count, value=1)
        if run.reason == "balance_mismatch":
            metrics.add_metric(name="SettlementBalanceMismatch", unit=MetricUnit.Count, value=1)
        logger.warning(
            "settlement file rejected", extra={"run_id": run.run_id, "reason": run.reason, "error": run.error}
        )
    elif change.change == "completed":
        metrics.add_metric(name="SettlementRows", unit=MetricUnit.Count, value=run.rows)
        metrics.add_metric(name="SettlementMatched", unit=MetricUnit.Count, value=run.matched)
        for klass, count in run.breaks.items():
            metrics.add_metric(name=f"SettlementBreaks_{klass}", unit=MetricUnit.Count, value=count)
        temporary = sum(run.temporary_breaks.values())
        metrics.add_metric(name="SettlementTemporaryBreaks", unit=MetricUnit.Count, value=temporary)
        logger.info(
            "reconciliation run completed",
            extra={"run_id": run.run_id, "rows": run.rows, "matched": run.matched, "breaks": run.breaks},
        )
    elif change.change == "distributed":
        logger.info("large settlement file: Distributed Map started", extra={"run_id": run.run_id})


def _file_message(message: FileQueueMessage) -> None:
    match message.root:
        case FinalizeRun(run_id=run_id):
            _report(domain.finalize_run(run_id, ports=_ports(), policy=_policy()))
        case MapFailed() as failed:
            _report(domain.abandon_run(failed.run_id, failed.cause(), ports=_ports()))
        case S3Notification(records=records):
            for record in records:
                source = record.source()
                logger.append_keys(settlement_key=source.key)
                change = domain.start_run(source, ports=_ports(), policy=_policy())
                _report(change)
                run = change.run
                logger.info("reconciliation run", extra={"run_id": run.run_id, "status": run.status, "rows": run.rows})
        case S3TestEvent():
            pass  # S3 sends one when the notification is configured


_FILE_QUEUE_RECORD = record_model(FileQueueMessage)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _FILE_QUEUE_RECORD, _file_message)


# --- the Distributed Map's row worker ----------------------------------------------------------------


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def rows_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """The batch is one chunk: if it fails, every record is retried (all writes are idempotent)."""
    records = event.get("Records", [])
    try:
        domain.reconcile_row_tasks([RowTask.model_validate_json(r["body"]) for r in records], ports=_ports())
    except Exception:  # noqa: BLE001 - any failure retries the whole batch; the writes are idempotent
        logger.exception("settlement rows failed; the batch will be retried")
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}
    return {"batchItemFailures": []}


# --- the deadline check ------------------------------------------------------------------------------


@functools.cache
def _deadline_settings() -> SettlementDeadlineSettings:
    return SettlementDeadlineSettings.from_env()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def deadline_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """On a schedule: has the latest due day's settlement file arrived? If not, the day is MISSING and the
    SettlementFileMissing metric (alarmed) is 1."""
    settings = _deadline_settings()
    check = check_day(
        ScheduledCheck.model_validate(event).time,
        deadline_hour=settings.deadline_hour,
        bucket=settings.settlement_bucket,
        prefix=settings.settlement_prefix,
        runs=DynamoRunStore(settings.runs_table),
        files=S3DayFiles(settings.settlement_bucket, settings.settlement_prefix),
    )
    metrics.add_metric(name="SettlementFileMissing", unit=MetricUnit.Count, value=1 if check.missing else 0)
    if check.missing:
        logger.error("no settlement file by the deadline", extra={"day": check.day.isoformat()})
    return {
        "day": check.day.isoformat(),
        "missing": check.missing,
        "run_id": check.record.run_id if check.record else None,
    }
