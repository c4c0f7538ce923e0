"""The payout provider's webhook receiver against the template's resources in moto: an event signed with
the provider's own secret under `Payouts-Signature` confirms the payout once; the PSP's secret or header
is refused and changes nothing; a redelivery is a duplicate; a later contrary verdict moves nothing; and
the same event id from the PSP's receiver does not shadow the provider's (the shared log is namespaced)."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from functions.common.observability import metrics
from functions.psp_webhooks.signatures import secrets_from
from local_stack.deploy import LocalCloud
from tests.integration.conftest import api_event, context
from tests.support.psp_signatures import signature_header

HANDLER = "functions.payout_webhooks.handler.handler"
PATH = "/v1/webhooks/payout-provider"


def table(cloud: LocalCloud, fragment: str) -> str:
    return next(name for logical_id, name in cloud.names_of("AWS::DynamoDB::Table").items() if fragment in logical_id)


def secret_value(arn: str) -> str:
    return secrets_from(boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])[0]


@pytest.fixture
def receiver(cloud: LocalCloud, use_function_env: Callable[[str], None]) -> Any:
    use_function_env(HANDLER)
    parameters.clear_caches()
    module = importlib.import_module("functions.payout_webhooks.handler")
    module.ports.cache_clear()
    return module


def payment_event(event_id: str, event_type: str, *, failure_code: str | None = None) -> bytes:
    payment = {
        "object": "payment",
        "id": "pmt_1",
        "payee_id": "s1.v1",
        "amount": 700,
        "currency": "USD",
        "reference": "payout_w1",
        "status": event_type.removeprefix("payment."),
        "failure_code": failure_code,
    }
    event = {"id": event_id, "type": event_type, "created": int(time.time()), "data": payment}
    return json.dumps(event).encode()


def post(module: Any, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = api_event("POST", PATH, headers=headers, api_key_id=None)
    request["body"] = body.decode()
    response = module.handler(request, context("payout-webhooks"))
    return response["statusCode"], json.loads(response["body"])


def conflicts(output: str) -> list[Any]:
    """The PayoutWebhooksConflict metric in the Powertools EMF documents the handler printed (one each)."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [m["PayoutWebhooksConflict"] for m in lines if "PayoutWebhooksConflict" in m]


def test_a_payment_verdict_signed_by_the_provider_confirms_the_payout_once(
    cloud: LocalCloud, receiver: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = receiver.PayoutWebhookSettings.from_env()
    provider_secret = secret_value(settings.secret_arn)
    psp_secret_arn = next(
        f.environment["WEBHOOK_SECRET_ARN"] for f in cloud.functions.values() if "WEBHOOK_SECRET_ARN" in f.environment
    )
    assert psp_secret_arn != settings.secret_arn
    executions = boto3.resource("dynamodb").Table(table(cloud, "PayoutExecutionsTable"))
    paid = payment_event("evt_p1", "payment.paid")
    now = int(time.time())

    # Refused: the PSP's secret under the provider's header, and the provider's signature under the PSP's header
    refusals = [
        post(receiver, paid, {"Payouts-Signature": signature_header(secret_value(psp_secret_arn), now, paid)}),
        post(receiver, paid, {"PSP-Signature": signature_header(provider_secret, now, paid)}),
    ]
    assert [(s, a["error"]["code"], a["error"]["param"]) for s, a in refusals] == [
        (400, "signature_invalid", "Payouts-Signature")
    ] * 2
    assert "Item" not in executions.get_item(Key={"payout_id": "payout_w1"})

    # Accepted: the provider's own signature; then a redelivery, and a contrary verdict under a new event id
    capsys.readouterr()
    metrics.clear_metrics()  # what earlier tests left in the process's metric buffer is not this test's
    signed = {"Payouts-Signature": signature_header(provider_secret, now, paid)}
    failed = payment_event("evt_p2", "payment.failed", failure_code="account_closed")
    answers = [
        post(receiver, paid, signed),
        post(receiver, paid, signed),
        post(receiver, failed, {"Payouts-Signature": signature_header(provider_secret, now, failed)}),
    ]
    assert answers == [
        (200, {"received": True, "duplicate": False}),
        (200, {"received": True, "duplicate": True}),
        (200, {"received": True, "duplicate": False}),
    ]
    # the contradicting verdict changed nothing, and was reported as a conflict (alarmed)
    assert conflicts(capsys.readouterr().out) == [[1.0]]
    item = executions.get_item(Key={"payout_id": "payout_w1"})["Item"]
    assert (item["outcome"], item["psp_reference"], item.get("failure_code")) == ("paid", "pmt_1", "")
    # The shared event log keeps the provider's ids in their own namespace
    events = boto3.resource("dynamodb").Table(settings.events_table)
    assert "Item" in events.get_item(Key={"event_id": "payout-provider/evt_p1"})
    assert "Item" not in events.get_item(Key={"event_id": "evt_p1"})


def test_a_failed_payment_without_a_code_fails_the_payout_with_a_code_of_ours(cloud: LocalCloud, receiver: Any) -> None:
    settings = receiver.PayoutWebhookSettings.from_env()
    body = payment_event("evt_f1", "payment.failed")
    status, answer = post(
        receiver,
        body,
        {"Payouts-Signature": signature_header(secret_value(settings.secret_arn), int(time.time()), body)},
    )
    assert (status, answer) == (200, {"received": True, "duplicate": False})
    item = (
        boto3.resource("dynamodb")
        .Table(table(cloud, "PayoutExecutionsTable"))
        .get_item(Key={"payout_id": "payout_w1"})["Item"]
    )
    assert (item["outcome"], item["failure_code"]) == ("failed", "payout_failed")
