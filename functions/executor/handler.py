"""Executor Lambda: consumes the executor queue and charges each order once at the PSP."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.api import build_resolver
from functions.common.api_docs import PSP_WEBHOOK_ROUTE
from functions.common.events import ExecuteOrder
from functions.common.observability import correlate, logger, metrics, tracer
from functions.common.queues import QueuePublisher, consume_batch, record_model
from functions.common.secrets import SecretValue
from functions.executor import domain, payouts, recovery, webhooks
from functions.executor.payouts import (
    DynamoPayoutExecutionStore,
    PayoutExecutorSettings,
    PayoutTask,
    PspOperations,
    StepFunctionsAnswers,
)
from functions.executor.psp import ChargeResult, PspClient
from functions.executor.recovery import RecoverySettings
from functions.executor.settings import ExecutorSettings
from functions.executor.store import DynamoExecutionStore
from functions.executor.webhooks import WebhookSettings

SETTINGS_MODELS = {
    "handler": ExecutorSettings,
    "payout_handler": PayoutExecutorSettings,
    "recovery_handler": RecoverySettings,
    "webhook_handler": WebhookSettings,
}


class _MeteredPsp:
    """Records charge latency and declines around the real client."""

    def __init__(self, psp: PspClient) -> None:
        self._psp = psp

    def charge(self, **kwargs: Any) -> ChargeResult:
        started = time.perf_counter()
        result = self._psp.charge(**kwargs)
        metrics.add_metric(
            name="PspChargeLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
        )
        if result.status == "failed":
            metrics.add_metric(name="ChargesDeclined", unit=MetricUnit.Count, value=1)
        return result


@functools.cache
def _ports() -> dict[str, Any]:
    settings = ExecutorSettings.from_env()
    return {
        "store": DynamoExecutionStore(settings.orders_table),
        "psp": _MeteredPsp(
            PspClient(
                settings.psp_base_url,
                timeout_seconds=settings.psp_timeout_seconds,
                max_retries=settings.psp_max_retries,
                api_key=SecretValue(settings.psp_api_key_secret),
            )
        ),
        "wallet": QueuePublisher(settings.wallet_queue_url),
        "order_status": QueuePublisher(settings.order_status_queue_url),
    }


_RECORD = record_model(ExecuteOrder)


def _execute(order: ExecuteOrder) -> None:
    correlate(order.payment_id, payment_order_id=order.payment_order_id)
    execution = domain.execute_order(order, **_ports())
    logger.info("order executed", extra={"status": execution.status, "attempts": execution.attempts})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _RECORD, _execute)


# Pay-outs: the saga's task tokens arrive on the payout queue.
@functools.cache
def _payout_ports() -> dict[str, Any]:
    settings = PayoutExecutorSettings.from_env()
    return {
        "psp": PspOperations(
            settings.psp_base_url, timeout_seconds=settings.psp_timeout_seconds, max_retries=settings.psp_max_retries
        ),
        "store": DynamoPayoutExecutionStore(settings.payouts_table),
        "answers": StepFunctionsAnswers(),
    }


_PAYOUT_RECORD = record_model(PayoutTask)


def _payout_task(task: PayoutTask) -> None:
    logger.append_keys(payout_id=task.payout_id, action=task.action)
    ports = _payout_ports()
    if task.action == "execute":
        outcome = payouts.execute_payout(task, psp=ports["psp"], store=ports["store"], answers=ports["answers"])
        logger.info("payout submitted", extra={"outcome": outcome})
    else:
        answered = payouts.await_confirmation(task, store=ports["store"], answers=ports["answers"])
        logger.info("payout confirmation awaited", extra={"answered_now": answered})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def payout_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _PAYOUT_RECORD, _payout_task)


# Recovery: the scheduled sweep of undecided orders.
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def recovery_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = RecoverySettings.from_env()
    # An operator (or a test) may sweep with a shorter deadline: {"resolve_after_seconds": 0}.
    resolve_after = int((event or {}).get("resolve_after_seconds", settings.resolve_after_seconds))
    report = recovery.recover_orders(
        now=datetime.now(UTC),
        resolve_after=timedelta(seconds=max(resolve_after, 0)),
        stuck_after=timedelta(seconds=settings.stuck_after_seconds),
        store=DynamoExecutionStore(settings.orders_table),
        psp=PspOperations(
            settings.psp_base_url, timeout_seconds=settings.psp_timeout_seconds, max_retries=settings.psp_max_retries
        ),
        wallet=QueuePublisher(settings.wallet_queue_url),
        order_status=QueuePublisher(settings.order_status_queue_url),
    )
    for status, count in report.resolved.items():
        metrics.add_metric(name=f"OrdersResolved{status.title()}", unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="OrdersStuck", unit=MetricUnit.Count, value=len(report.stuck))
    if report.stuck:
        logger.warning("orders stuck past the second deadline", extra={"payment_order_ids": report.stuck[:50]})
    logger.info("recovery sweep", extra={"examined": report.examined, "still_pending": report.still_pending})
    return {
        "examined": report.examined,
        "resolved": report.resolved,
        "still_pending": report.still_pending,
        "stuck": len(report.stuck),
    }


# PSP webhooks (public route without an API key: the signature authenticates the PSP).
webhook_app = build_resolver()


@functools.cache
def _webhook_ports() -> dict[str, Any]:
    settings = WebhookSettings.from_env()
    return {
        "settings": settings,
        "secrets": webhooks.SecretsManagerSecrets(settings.secret_arn),
        "events": webhooks.DynamoEventLog(settings.events_table),
        "orders": DynamoExecutionStore(settings.orders_table),
        "wallet": QueuePublisher(settings.wallet_queue_url),
        "order_status": QueuePublisher(settings.order_status_queue_url),
        "payout_store": DynamoPayoutExecutionStore(settings.payouts_table),
        "answers": StepFunctionsAnswers(),
    }


@webhook_app.post("/v1/webhooks/psp", summary="PSP events (signed with PSP-Signature)", **PSP_WEBHOOK_ROUTE)
def receive_webhook() -> dict[str, Any]:
    ports = _webhook_ports()
    current = webhook_app.current_event
    text = current.decoded_body if current.is_base64_encoded else current.body
    body = (text or "").encode()
    header = current.headers.get(webhooks.SIGNATURE_HEADER) or current.headers.get(webhooks.SIGNATURE_HEADER.lower())
    webhooks.verify_with_rotation(
        header, body, secrets=ports["secrets"], tolerance_seconds=ports["settings"].tolerance_seconds
    )
    event = webhooks.parse_event(body)
    logger.append_keys(psp_event_id=event.id, psp_event_type=event.type)
    outcome = webhooks.apply_event(
        event,
        events=ports["events"],
        orders=ports["orders"],
        wallet=ports["wallet"],
        order_status=ports["order_status"],
        payout_store=ports["payout_store"],
        answers=ports["answers"],
    )
    metrics.add_metric(name=f"Webhooks{outcome.title()}", unit=MetricUnit.Count, value=1)
    logger.info("webhook", extra={"outcome": outcome})
    return {"received": True, "duplicate": outcome == "duplicate"}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def webhook_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return webhook_app.resolve(event, context)
