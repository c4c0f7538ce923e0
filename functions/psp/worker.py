"""What a queue worker that calls the PSP is built from, by its settings: the PSP client behind the shared
circuit breaker, and batch options (concurrency, time budget, backoff by age, its dead-letter queue)."""

from __future__ import annotations

import time

from functions.common.queues import BatchOptions, SqsFailedRecords
from functions.psp.breaker import CircuitBreaker, GuardedPsp
from functions.psp.circuit_metrics import CircuitMetrics
from functions.psp.circuit_store import DynamoCircuitStore
from functions.psp.client import PspClient
from functions.psp.settings import PspWorkerSettings


def guarded_psp(settings: PspWorkerSettings) -> GuardedPsp:
    policy = settings.circuit_policy
    breaker = CircuitBreaker(
        settings.circuit_name,
        policy,
        DynamoCircuitStore(settings.circuit_table),
        clock=time.time,
        observer=CircuitMetrics(settings.circuit_name, policy),
        sync_seconds=settings.circuit_sync_seconds,
    )
    return GuardedPsp(PspClient.from_settings(settings), breaker)


def batch_options(settings: PspWorkerSettings) -> BatchOptions:
    return BatchOptions(
        concurrency=settings.batch_concurrency,
        record_seconds=settings.record_seconds,
        margin_seconds=settings.deadline_margin_seconds,
        failed_records=SqsFailedRecords(settings.retry_policy, settings.dead_letter_queue_url),
    )
