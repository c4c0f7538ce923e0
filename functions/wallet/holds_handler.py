"""Wallet holds Lambdas: the worker that releases held orders (functions/wallet/holds.py), and the hourly
sweep that asks it to release every hold whose period is over."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.clock import utc_now
from functions.common.events import ReleaseHold
from functions.common.observability import logger, metrics, tracer
from functions.common.queues import BatchOptions, QueuePublisher, SqsFailedRecords, consume_batch, record_model
from functions.wallet import holds
from functions.wallet.settings import HoldSweepSettings, WalletHoldsSettings
from functions.wallet.store import DynamoWalletStore


@dataclass(frozen=True)
class ReleasePorts:
    store: DynamoWalletStore
    ledger: QueuePublisher
    # A release waits, by age, for its order's credit on the wallet queue (functions/wallet/settings.py):
    # each failed record is rescheduled on the holds queue with backoff, or dead-lettered.
    options: BatchOptions


@functools.cache
def _release_ports() -> ReleasePorts:
    settings = WalletHoldsSettings.from_env()
    return ReleasePorts(
        store=DynamoWalletStore(settings.wallet_table),
        ledger=QueuePublisher(settings.ledger_postings_queue_url),
        options=BatchOptions(failed_records=SqsFailedRecords(settings.retry_policy, settings.dead_letter_queue_url)),
    )


_RECORD = record_model(ReleaseHold)


def _release(message: ReleaseHold) -> None:
    logger.append_keys(payment_order_id=message.payment_order_id)
    ports = _release_ports()
    hold = holds.release_hold(message, store=ports.store, ledger=ports.ledger)
    logger.info("hold release", extra={"reason": message.reason, "status": hold.status, "released": hold.released})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _RECORD, _release, _release_ports().options)


@dataclass(frozen=True)
class SweepPorts:
    store: DynamoWalletStore
    holds_queue: QueuePublisher
    lookback_days: int


@functools.cache
def _sweep_ports() -> SweepPorts:
    settings = HoldSweepSettings.from_env()
    return SweepPorts(
        store=DynamoWalletStore(settings.wallet_table),
        holds_queue=QueuePublisher(settings.wallet_holds_queue_url),
        lookback_days=settings.lookback_days,
    )


def _fired_at(event: dict[str, Any]) -> datetime:
    """The schedule's time (EventBridge's `time`), so a sweep is judged by when it was due to run."""
    fired = event.get("time")
    return datetime.fromisoformat(str(fired).replace("Z", "+00:00")) if fired else utc_now()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def sweep_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge's hourly rule: release the holds whose period is over."""
    ports = _sweep_ports()
    asked = holds.sweep_due_holds(
        _fired_at(event), lookback_days=ports.lookback_days, store=ports.store, holds_queue=ports.holds_queue
    )
    metrics.add_metric(name="HoldsExpired", unit=MetricUnit.Count, value=asked)
    logger.info("hold sweep", extra={"releases_asked": asked})
    return {"releases_asked": asked}
