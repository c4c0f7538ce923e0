"""An orphan charge through the real webhook handler and the executor's table in moto: a signed
"charge.succeeded" for an order decided FAILED is acknowledged, not applied (no wallet credit), recorded on
the order with the PSP's reference, and published as the OrphanCharges metric."""

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
    cloud: LocalCloud, use_function_env: Callable[[str], None], capsys: pytest.CaptureFixture[str]
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
    body = json.dumps(event)
    request = api_event("POST", "/v1/webhooks/psp")
    request["body"] = body
    request["headers"]["PSP-Signature"] = signature_header(secret, int(time.time()), body.encode())
    capsys.readouterr()
    response = webhooks.handler(request, context("psp-webhooks"))

    # Then it is acknowledged, and the order stays FAILED with the charge recorded on it
    assert (response["statusCode"], json.loads(response["body"])) == (200, {"received": True, "duplicate": False})
    item = boto3.resource("dynamodb").Table(orders).get_item(Key={"payment_order_id": "po_orphan"})["Item"]
    assert (item["status"], item["failure_code"], item["orphan_charges"]) == ("FAILED", "psp_no_charge", {"ch_orphan"})
    assert "psp_reference" not in item
    # And nothing was sent to credit the seller
    messages = boto3.client("sqs").receive_message(QueueUrl=settings.wallet_queue_url, MaxNumberOfMessages=10)
    assert messages.get("Messages", []) == []
    # And the OrphanCharges metric was published once (EMF: the handler flushes one document)
    published = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["OrphanCharges"] for m in published if "OrphanCharges" in m] == [[1.0]]
