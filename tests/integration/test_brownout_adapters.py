"""The brownout machinery against the template's own resources in moto: the PSP circuit's item in its
table, and the charge executor handing orders back with backoff (ChangeMessageVisibility) while the PSP
is unreachable, dead-lettering what is too old or unreadable, and never failing an order for it."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from functions.common.events import ExecuteOrder
from functions.psp.circuit import CircuitState
from functions.psp.circuit_store import TTL_ATTRIBUTE, DynamoCircuitStore
from local_stack.deploy import LocalCloud
from tests.integration.conftest import context

EXECUTOR = "functions.executor.handler.handler"


def _env(cloud: LocalCloud, name: str) -> str:
    spec = next(f for f in cloud.functions.values() if f.handler == EXECUTOR)
    return spec.environment[name]


def test_the_circuit_item_is_versioned_and_expires(cloud: LocalCloud) -> None:
    table_name = _env(cloud, "PSP_CIRCUIT_TABLE_NAME")
    store = DynamoCircuitStore(table_name)
    # Given no circuit yet: closed and empty
    assert store.read("psp") == CircuitState()
    # When one execution writes version 1, a second write expecting version 0 loses
    opened = CircuitState(status="open", opened_at=1_700_000_000.25)
    assert store.replace("psp", opened, expected_version=0, now=1_700_000_000.5) is True
    assert store.replace("psp", CircuitState(), expected_version=0, now=1_700_000_001) is False
    # Then the stored state is the winner's, as version 1, expiring an hour after it was written
    assert store.read("psp") == opened.model_copy(update={"version": 1})
    item = boto3.resource("dynamodb").Table(table_name).get_item(Key={"circuit": "psp"})["Item"]
    assert item[TTL_ATTRIBUTE] == 1_700_000_000 + 3600
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", TTL_ATTRIBUTE)


@pytest.fixture
def executor(
    cloud: LocalCloud, use_function_env: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    use_function_env(EXECUTOR)
    monkeypatch.setenv("PSP_BASE_URL", "http://127.0.0.1:9")  # nothing listens: the PSP is unreachable
    monkeypatch.setenv("PSP_TIMEOUT_SECONDS", "0.2")
    monkeypatch.setenv("MAX_MESSAGE_AGE_SECONDS", "2")
    handler = importlib.import_module("functions.executor.handler")
    handler.ports.cache_clear()
    yield handler
    handler.ports.cache_clear()


def _order(order_id: str) -> str:
    return ExecuteOrder(
        payment_id="pay_b",
        payment_order_id=order_id,
        seller_id="seller_b",
        buyer_id="buyer_b",
        amount=1500,
        currency="USD",
        payment_method="tok_visa",
    ).model_dump_json()


def _receive(cloud: LocalCloud, *bodies: str) -> tuple[str, dict[str, Any]]:
    """Send the bodies to the executor queue and receive them as the event source would."""
    sqs = boto3.client("sqs")
    source = next(m.source_arn for m in cloud.event_sources if cloud.functions[m.function].handler == EXECUTOR)
    url = cloud.queue_url_by_arn(source)
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    messages: list[dict[str, Any]] = []
    while len(messages) < len(bodies):
        messages += sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m["Attributes"],
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": source,
            "awsRegion": "us-east-1",
        }
        for m in messages
    ]
    return url, {"Records": sorted(records, key=lambda r: bodies.index(r["body"]))}


def test_an_unreachable_psp_hands_the_order_back_with_backoff(cloud: LocalCloud, executor: Any) -> None:
    # Given an order on the executor queue, and a PSP nobody answers for
    url, event = _receive(cloud, _order("po_b1"))
    # When the executor takes it
    result = executor.handler(event, context())
    # Then it is reported failed, and hidden for its backoff rather than the queue's visibility timeout
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    sqs = boto3.client("sqs")
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
    time.sleep(2.1)  # the first backoff is 1 to 2 s
    again = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    # And the order is still open (claimed, never failed), with nothing in the dead-letter queue
    execution = executor.ports().store.get("po_b1")
    assert (execution.status, execution.failure_code) == ("EXECUTING", None)
    dlq = sqs.receive_message(QueueUrl=_env(cloud, "DEAD_LETTER_QUEUE_URL"), WaitTimeSeconds=0)
    assert dlq.get("Messages", []) == []


def test_too_old_and_unreadable_messages_go_to_the_dead_letter_queue(cloud: LocalCloud, executor: Any) -> None:
    # Given an order whose message is already older than the maximum age (2 s here), and an unreadable one
    _, event = _receive(cloud, _order("po_b2"), "not json")
    time.sleep(2.1)
    # When the executor takes them and the PSP is still unreachable
    result = executor.handler(event, context())
    # Then both are reported done (the event source deletes them) and copied to the dead-letter queue
    assert result == {"batchItemFailures": []}
    sqs = boto3.client("sqs")
    dead = sqs.receive_message(
        QueueUrl=_env(cloud, "DEAD_LETTER_QUEUE_URL"),
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        WaitTimeSeconds=1,
    )["Messages"]
    reasons = {m["Body"]: m["MessageAttributes"]["dead_letter_reason"]["StringValue"] for m in dead}
    assert reasons == {_order("po_b2"): "max_age", "not json": "poison"}
    sources = {m["MessageAttributes"]["source_message_id"]["StringValue"] for m in dead}
    assert sources == {r["messageId"] for r in event["Records"]}
    # And the order was never decided FAILED for it
    assert executor.ports().store.get("po_b2").status == "EXECUTING"
