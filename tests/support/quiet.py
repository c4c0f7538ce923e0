"""Helpers to observe the local stack's state: wait until every queue is drained, snapshot tables."""

from __future__ import annotations

import time
from typing import Any

from local_stack.stack import LocalStack


def wait_until_queues_drained(stack: LocalStack, aws: Any, *, timeout: float = 60) -> None:
    """Until no queue holds a visible or in-flight message (DLQs excepted) for two looks in a row."""
    assert stack.cloud is not None
    urls = [r.ref for r in stack.cloud.physical.values() if r.type == "AWS::SQS::Queue" and "Dlq" not in r.logical_id]
    deadline = time.monotonic() + timeout
    quiet_looks = 0
    while quiet_looks < 2:
        busy = 0
        for url in urls:
            attributes = aws("sqs").get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            busy += int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )
        quiet_looks = quiet_looks + 1 if busy == 0 else 0
        assert time.monotonic() < deadline, f"{busy} messages still in flight"
        time.sleep(0.3)


def table_snapshot(stack: LocalStack, aws: Any) -> dict[str, list[dict[str, Any]]]:
    assert stack.cloud is not None
    snapshot: dict[str, list[dict[str, Any]]] = {}
    for logical_id, name in stack.cloud.names_of("AWS::DynamoDB::Table").items():
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": name, "ConsistentRead": True}
        while True:
            page = aws("dynamodb").scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        snapshot[logical_id] = sorted(items, key=repr)
    return snapshot
