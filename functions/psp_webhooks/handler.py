"""PSP webhooks Lambda: a public route without an API key (the signature authenticates the PSP) that
settles pending charges and refunds, and hands dispute notices on."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.api import build_resolver
from functions.common.api_docs import PSP_WEBHOOK_ROUTE
from functions.common.observability import logger, metrics, tracer
from functions.common.queues import QueuePublisher
from functions.executor.domain import Publisher
from functions.executor.store import DynamoExecutionStore
from functions.psp_webhooks import domain
from functions.psp_webhooks.settings import PspWebhookSettings
from functions.psp_webhooks.signatures import SIGNATURE_HEADER, SigningSecrets, verified_event
from functions.psp_webhooks.store import DynamoEventLog, SecretsManagerSigningSecrets
from functions.refund.store import DynamoRefundStore
from functions.refund.verdicts import RefundVerdicts

app = build_resolver()


@dataclass(frozen=True)
class WebhookPorts:
    tolerance_seconds: int
    secrets: SigningSecrets
    events: domain.EventLog
    orders: domain.OrderFinder
    wallet: Publisher
    order_status: Publisher
    disputes: Publisher
    refunds: domain.RefundSettler


@functools.cache
def ports() -> WebhookPorts:
    settings = PspWebhookSettings.from_env()
    return WebhookPorts(
        tolerance_seconds=settings.tolerance_seconds,
        secrets=SecretsManagerSigningSecrets(settings.secret_arn, max_age=settings.secret_cache_seconds),
        events=DynamoEventLog(settings.events_table),
        orders=DynamoExecutionStore(settings.orders_table),
        wallet=QueuePublisher(settings.wallet_queue_url),
        order_status=QueuePublisher(settings.order_status_queue_url),
        disputes=QueuePublisher(settings.disputes_queue_url),
        refunds=RefundVerdicts(
            DynamoRefundStore(settings.refunds_table), QueuePublisher(settings.wallet_refunds_queue_url)
        ),
    )


@app.post("/v1/webhooks/psp", summary="PSP events (signed with PSP-Signature)", **PSP_WEBHOOK_ROUTE)
def receive_webhook() -> dict[str, Any]:
    wired = ports()
    event = verified_event(
        app.current_event,
        header_name=SIGNATURE_HEADER,
        secrets=wired.secrets.get(),
        tolerance_seconds=wired.tolerance_seconds,
    )
    logger.append_keys(psp_event_id=event.id, psp_event_type=event.type)
    outcome = domain.apply_event(
        event,
        events=wired.events,
        orders=wired.orders,
        wallet=wired.wallet,
        order_status=wired.order_status,
        disputes=wired.disputes,
        refunds=wired.refunds,
    )
    metrics.add_metric(name=f"Webhooks{outcome.title()}", unit=MetricUnit.Count, value=1)
    logger.info("webhook", extra={"outcome": outcome})
    return {"received": True, "duplicate": outcome == "duplicate"}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
