"""The payment API handler against the template's tables in moto: idempotency under concurrency."""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from typing import Any

import boto3

from functions.payment.models import PaymentRequest
from local_stack.deploy import LocalCloud
from tests.integration.conftest import API_KEY_ID, api_event, context
from tests.support.api import checkout

HANDLER = "functions.payment.api.api_handler"


def _handler_module(use_function_env: Callable[[str], None]) -> Any:
    use_function_env(HANDLER)
    module = importlib.import_module("functions.payment.api")
    module._api.cache_clear()
    return module


def test_same_key_while_the_first_request_runs_is_409_then_replays(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    handler = _handler_module(use_function_env)
    body = checkout(("seller_a", 1000))
    key = "concurrent-key-1"
    _, operations = handler._api()
    first_started, release_first = threading.Event(), threading.Event()
    first_result: dict[str, Any] = {}

    def slow_first() -> dict[str, Any]:
        first_started.set()
        release_first.wait(10)
        return {"payment_id": "pay_first", "status": "PROCESSING"}

    # Given a first request with the key is still running
    request = PaymentRequest.model_validate(body).model_dump(mode="json")
    runner = threading.Thread(
        target=lambda: first_result.update(
            response=operations.run("create_payment", API_KEY_ID, key, request, slow_first)
        )
    )
    runner.start()
    assert first_started.wait(10)

    # When the same key arrives again
    second = handler.api_handler(api_event("POST", "/v1/payments", body, {"Idempotency-Key": key}), context())

    # Then it is refused with 409, and nothing was stored for it
    assert second["statusCode"] == 409
    assert json.loads(second["body"])["error"]["code"] == "idempotency_request_in_progress"
    release_first.set()
    runner.join(10)
    assert first_result["response"].status_code == 202

    # And once the first finished, the key replays the first response
    third = handler.api_handler(api_event("POST", "/v1/payments", body, {"Idempotency-Key": key}), context())
    assert third["statusCode"] == 202
    assert json.loads(third["body"]) == {"payment_id": "pay_first", "status": "PROCESSING"}
    assert third["multiValueHeaders"]["Idempotent-Replayed"] == ["true"]
    payments_table = next(n for k, n in cloud.names_of("AWS::DynamoDB::Table").items() if "PaymentsTable" in k)
    assert boto3.client("dynamodb").scan(TableName=payments_table)["Count"] == 0


def test_accepting_a_payment_stores_it_with_guards_and_no_dispatch_of_its_own(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    handler = _handler_module(use_function_env)
    body = checkout(("seller_a", 1000), ("seller_b", 2))
    response = handler.api_handler(api_event("POST", "/v1/payments", body, {"Idempotency-Key": "k-store"}), context())
    assert response["statusCode"] == 202
    payment = json.loads(response["body"])
    assert (payment["status"], payment["amount"]) == ("PROCESSING", 1002)
    payments_table = next(n for k, n in cloud.names_of("AWS::DynamoDB::Table").items() if "PaymentsTable" in k)
    items = boto3.client("dynamodb").scan(TableName=payments_table)["Items"]
    assert sorted(i["sk"]["S"] for i in items) == ["GUARD", "GUARD", "PAYMENT"]
    # dispatch happens only through the table's stream (the outbox): no executor message yet
    executor_queue = next(
        r.ref
        for r in cloud.physical.values()
        if r.type == "AWS::SQS::Queue" and r.logical_id.startswith("PayInExecutorQueue") and "Dlq" not in r.logical_id
    )
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=executor_queue, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
