"""Payout provider webhooks Lambda: a public route without an API key (the provider's signature, under its
own header and secret, authenticates it) that confirms payouts to the waiting saga."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.api import build_resolver
from functions.common.api_docs import PAYOUT_WEBHOOK_ROUTE
from functions.common.observability import logger, metrics, tracer
from functions.payout_executor.domain import PayoutExecutionStore, TaskAnswers
from functions.payout_executor.store import DynamoPayoutExecutionStore, StepFunctionsAnswers
from functions.payout_webhooks.domain import EVENT_KEY_PREFIX, apply_payment_event
from functions.payout_webhooks.settings import PayoutWebhookSettings
from functions.psp_webhooks.domain import EventLog
from functions.psp_webhooks.signatures import SigningSecrets, verified_event
from functions.psp_webhooks.store import DynamoEventLog, SecretsManagerSigningSecrets

app = build_resolver()

SIGNATURE_HEADER = "Payouts-Signature"


@dataclass(frozen=True)
class PayoutWebhookPorts:
    tolerance_seconds: int
    secrets: SigningSecrets
    events: EventLog
    payout_store: PayoutExecutionStore
    answers: TaskAnswers


@functools.cache
def ports() -> PayoutWebhookPorts:
    settings = PayoutWebhookSettings.from_env()
    return PayoutWebhookPorts(
        tolerance_seconds=settings.tolerance_seconds,
        secrets=SecretsManagerSigningSecrets(settings.secret_arn, max_age=settings.secret_cache_seconds),
        events=DynamoEventLog(settings.events_table, key_prefix=EVENT_KEY_PREFIX),
        payout_store=DynamoPayoutExecutionStore(settings.payouts_table),
        answers=StepFunctionsAnswers(),
    )


@app.post(
    "/v1/webhooks/payout-provider",
    summary="Payout provider events (signed with Payouts-Signature)",
    **PAYOUT_WEBHOOK_ROUTE,
)
def receive_payout_webhook() -> dict[str, Any]:
    wired = ports()
    event = verified_event(
        app.current_event,
        header_name=SIGNATURE_HEADER,
        secrets=wired.secrets.get(),
        tolerance_seconds=wired.tolerance_seconds,
    )
    logger.append_keys(provider_event_id=event.id, provider_event_type=event.type)
    outcome = apply_payment_event(event, events=wired.events, payout_store=wired.payout_store, answers=wired.answers)
    metrics.add_metric(name=f"PayoutWebhooks{outcome.title()}", unit=MetricUnit.Count, value=1)
    if outcome == "conflict":
        logger.error("a payout verdict contradicts the one recorded", extra={"outcome": outcome})
    else:
        logger.info("payout webhook", extra={"outcome": outcome})
    return {"received": True, "duplicate": outcome == "duplicate"}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
