"""Payout executor Lambda: the pay-out saga's task tokens arrive on the payout queue; each payout is
submitted to the payout provider once (idempotency key = payout_id), and its confirmation token is parked.

Like the charge executor: tasks of one batch run concurrently within the invocation's time budget, behind
the provider's circuit breaker, and a provider that is slow or failing makes a task come back later with backoff."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.observability import logger, metrics, tracer
from functions.common.queues import BatchOptions, consume_batch, record_model
from functions.payout_executor import domain
from functions.payout_executor.models import PayoutTask
from functions.payout_executor.settings import PayoutExecutorSettings
from functions.payout_executor.store import DynamoPayoutExecutionStore, StepFunctionsAnswers
from functions.payout_provider.worker import guarded_payout_provider
from functions.psp.worker import batch_options
from functions.sellers.store import SealedPayoutDestinations


@dataclass(frozen=True)
class PayoutPorts:
    provider: domain.PayoutProvider
    destinations: domain.PayoutDestinations
    store: domain.PayoutExecutionStore
    answers: domain.TaskAnswers
    batch: BatchOptions


@functools.cache
def ports() -> PayoutPorts:
    settings = PayoutExecutorSettings.from_env()
    return PayoutPorts(
        provider=guarded_payout_provider(settings),
        destinations=SealedPayoutDestinations(settings.sellers_table, settings.accounts_key_arn),
        store=DynamoPayoutExecutionStore(settings.payouts_table),
        answers=StepFunctionsAnswers(),
        batch=batch_options(settings),
    )


_RECORD = record_model(PayoutTask)


def _payout_task(task: PayoutTask) -> None:
    logger.thread_safe_append_keys(payout_id=task.payout_id, action=task.action)  # tasks run on threads
    wired = ports()
    if task.action == "execute":
        outcome = domain.execute_payout(
            task, provider=wired.provider, destinations=wired.destinations, store=wired.store, answers=wired.answers
        )
        logger.info("payout submitted", extra={"outcome": outcome})
    else:
        answered = domain.await_confirmation(task, store=wired.store, answers=wired.answers)
        logger.info("payout confirmation awaited", extra={"answered_now": answered})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _RECORD, _payout_task, ports().batch)
