"""What a queue worker that calls the PSP (or the payout provider) is built from, by its settings: the
client behind the service's shared circuit breaker, and batch options (concurrency, time budget, backoff
by age, its dead-letter queue)."""

from __future__ import annotations

import time

from functions.common.queues import BatchOptions, SqsFailedRecords
from functions.psp.breaker import CircuitBreaker, GuardedPsp
from functions.psp.circuit_metrics import CircuitMetrics
from functions.psp.circuit_store import DynamoCircuitStore
from functions.psp.client import PspClient
from functions.psp.settings import PspWorkerSettings, QueueWorkerSettings


def circuit_breaker(settings: QueueWorkerSettings) -> CircuitBreaker:
    """The circuit breaker of the service the worker calls (its circuit name), shared through the table."""
    policy = settings.circuit_policy
    return CircuitBreaker(
        settings.circuit_name,
        policy,
        DynamoCircuitStore(settings.circuit_table),
        clock=time.time,
        observer=CircuitMetrics(settings.circuit_name, policy),
        sync_seconds=settings.circuit_sync_seconds,
    )


def guarded_psp(settings: PspWorkerSettings) -> GuardedPsp:
    return GuardedPsp(PspClient.from_settings(settings), circuit_breaker(settings))


def batch_options(settings: QueueWorkerSettings) -> BatchOptions:
    return BatchOptions(
        concurrency=settings.batch_concurrency,
        record_seconds=settings.record_seconds,
        margin_seconds=settings.deadline_margin_seconds,
        failed_records=SqsFailedRecords(settings.retry_policy, settings.dead_letter_queue_url),
    )
