"""The local DynamoDB-stream event source: order, partial failures, poison records, filters."""

from __future__ import annotations

import json
import threading
from typing import Any

from local_stack.chaos import Chaos
from local_stack.deploy import EventSourceMapping
from local_stack.pollers import StreamPoller, passes_filters

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/1"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:dlq"


class FakeLambdas:
    """Fails every record whose key is in `poison`, reporting it as a batch item failure."""

    def __init__(self, poison: set[str]) -> None:
        self.poison = poison
        self.delivered: list[str] = []
        self.chaos = Chaos()
        self.meter = None

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            key = record["dynamodb"]["Keys"]["pk"]["S"]
            if key in self.poison:
                failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
                break  # Powertools stops at the first failure for ordered sources
            self.delivered.append(key)
        return {"batchItemFailures": failures}


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        self.sent.append(json.loads(MessageBody))


class FakeCloud:
    def queue_url_by_arn(self, arn: str) -> str:
        return "https://sqs/dlq"


def record(seq: int, key: str, event: str = "INSERT") -> dict[str, Any]:
    return {
        "eventID": str(seq),
        "eventName": event,
        "dynamodb": {
            "Keys": {"pk": {"S": key}},
            "NewImage": {"pk": {"S": key}, "sk": {"S": "PAYMENT"}},
            "SequenceNumber": str(seq),
            "SizeBytes": 1,
            "StreamViewType": "NEW_IMAGE",
        },
    }


def poller(lambdas: FakeLambdas, sqs: FakeSqs, patterns: tuple[dict[str, Any], ...] = ()) -> StreamPoller:
    mapping = EventSourceMapping(
        function="f",
        source_arn=ARN,
        kind="dynamodb",
        batch_size=10,
        report_batch_item_failures=True,
        maximum_retry_attempts=2,
        on_failure_arn=DLQ_ARN,
        filter_patterns=patterns,
    )
    return StreamPoller(
        mapping,
        cloud=FakeCloud(),
        lambdas=lambdas,
        streams=None,  # type: ignore[arg-type]
        sqs=sqs,
        stop=threading.Event(),
        retry_delay=0,
    )


def test_a_poison_record_goes_to_the_dlq_alone_and_the_rest_are_delivered_in_order() -> None:
    lambdas, sqs = FakeLambdas(poison={"b"}), FakeSqs()
    poller(lambdas, sqs)._deliver([record(1, "a"), record(2, "b"), record(3, "c"), record(4, "d")])
    assert lambdas.delivered == ["a", "c", "d"]
    assert [m["DDBStreamBatchInfo"]["startSequenceNumber"] for m in sqs.sent] == ["2"]
    assert sqs.sent[0]["DDBStreamBatchInfo"]["batchSize"] == 1


def test_filters_drop_records_before_invocation() -> None:
    pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"sk": {"S": ["PAYMENT"]}}}}
    lambdas, sqs = FakeLambdas(poison=set()), FakeSqs()
    poller(lambdas, sqs, (pattern,))._deliver([record(1, "a", "MODIFY"), record(2, "b"), record(3, "c", "REMOVE")])
    assert lambdas.delivered == ["b"]


def test_filter_patterns() -> None:
    assert passes_filters({"a": 1}, ())
    assert passes_filters({"a": "xyz"}, ({"a": [{"prefix": "x"}]},))
    assert not passes_filters({"a": "yz"}, ({"a": [{"prefix": "x"}]},))
    assert passes_filters({"a": "b"}, ({"a": [{"anything-but": ["c"]}]},))
    assert not passes_filters({"b": 1}, ({"a": ["1"]},))
    assert passes_filters({"b": 1}, ({"a": [{"exists": False}]},))
