"""An orphan charge through the real webhook handler and the executor's table in moto: a signed
"charge.succeeded" for an order decided FAILED is acknowledged, not applied (no wallet credit), recorded on
the order with the PSP's reference once, and published as the OrphanCharges metric and logged at error level
at every sighting (so a crash before the metric is flushed cannot hide it)."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from functions.psp_webhooks.signatures import secrets_from
from local_stack.deploy import LocalCloud
from tests.integration.conftest import api_event, context
from tests.support.psp_signatures import signature_header

HANDLER = "functions.psp_webhooks.handler.handler"


def table(cloud: LocalCloud, fragment: str) -> str:
    return next(name for logical_id, name in cloud.names_of("AWS::DynamoDB::Table").items() if fragment in logical_id)


def test_a10_a_succeeded_webhook_for_a_failed_order_is_recorded_as_an_orphan_charge(
    cloud: LocalCloud,
    use_function_env: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    use_function_env(HANDLER)
    parameters.clear_caches()
    webhooks = importlib.import_module("functions.psp_webhooks.handler")
    webhooks.ports.cache_clear()
    orders = table(cloud, "ExecutorTable")
    # Given an order recovery decided FAILED: the PSP had no charge for it then
    boto3.resource("dynamodb").Table(orders).put_item(
        Item={
            "payment_order_id": "po_orphan",
            "payment_id": "pay_orphan",
            "seller_id": "seller_o",
            "amount": 4200,
            "currency": "USD",
            "status": "FAILED",
            "failure_code": "psp_no_charge",
            "attempts": 1,
        }
    )
    settings = webhooks.PspWebhookSettings.from_env()
    value = boto3.client("secretsmanager").get_secret_value(SecretId=settings.secret_arn)["SecretString"]
    secret = secrets_from(value)[0]

    # When the PSP's signed webhook says it charged the order after all
    event = {
        "id": "evt_orphan",
        "type": "charge.succeeded",
        "created": int(time.time()),
        "data": {"object": {"id": "ch_orphan", "merchant_reference": "po_orphan", "status": "succeeded"}},
    }
    capsys.readouterr()
    responses = []
    for event_id in ("evt_orphan", "evt_orphan_retried"):  # the PSP sends it again under a new event id
        body = json.dumps({**event, "id": event_id})
        request = api_event("POST", "/v1/webhooks/psp")
        request["body"] = body
        request["headers"]["PSP-Signature"] = signature_header(secret, int(time.time()), body.encode())
        responses.append(webhooks.handler(request, context("psp-webhooks")))

    # Then both are acknowledged, and the order stays FAILED with the charge recorded on it
    assert [(r["statusCode"], json.loads(r["body"])) for r in responses] == [
        (200, {"received": True, "duplicate": False})
    ] * 2
    item = boto3.resource("dynamodb").Table(orders).get_item(Key={"payment_order_id": "po_orphan"})["Item"]
    assert (item["status"], item["failure_code"], item["orphan_psp_reference"]) == (
        "FAILED",
        "psp_no_charge",
        "ch_orphan",
    )
    assert "psp_reference" not in item
    # And nothing was sent to credit the seller
    messages = boto3.client("sqs").receive_message(QueueUrl=settings.wallet_queue_url, MaxNumberOfMessages=10)
    assert messages.get("Messages", []) == []
    # And each sighting published the OrphanCharges metric (one EMF document per invocation) and logged it
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [m["OrphanCharges"] for m in lines if "OrphanCharges" in m] == [[1.0], [1.0]]
    errors = [(r.getMessage(), r.payment_order_id, r.psp_reference) for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [("orphan charge: the PSP charged an order we decided FAILED", "po_orphan", "ch_orphan")] * 2
