"""The local event sources: the DynamoDB-stream poller's order, partial failures, poison records and
filters; and what both pollers share - duplicated deliveries and metered AWS calls."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from local_stack.chaos import Chaos
from local_stack.deploy import EventSourceMapping
from local_stack.metering import Meter
from local_stack.pollers import SqsPoller, StreamPoller, passes_filters

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/1"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:dlq"


class FakeLambdas:
    """Fails every record whose key is in `poison`, reporting it as a batch item failure."""

    def __init__(self, poison: set[str], meter: Meter | None = None) -> None:
        self.poison = poison
        self.delivered: list[str] = []
        self.chaos = Chaos()
        self.meter = meter

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


def poller(
    lambdas: FakeLambdas, sqs: FakeSqs, patterns: tuple[dict[str, Any], ...] = (), streams: Any = None
) -> StreamPoller:
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
        streams=streams,
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


class FlakyLambdas(FakeLambdas):
    """Fails the poison records in its first invocation only."""

    def __init__(self, poison: set[str]) -> None:
        super().__init__(poison)
        self.invocations = 0

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        self.invocations += 1
        if self.invocations > 1:
            self.poison = set()
        return super().invoke(function, event)


def test_a_duplicated_stream_batch_is_delivered_that_many_times() -> None:
    # Given chaos delivers every batch three times
    lambdas, sqs = FakeLambdas(poison=set()), FakeSqs()
    lambdas.chaos.duplicate_deliveries = 3

    # When a batch of two records is delivered
    poller(lambdas, sqs)._deliver([record(1, "a"), record(2, "b")])

    # Then the function saw it three times, in order, and nothing went to the DLQ
    assert lambdas.delivered == ["a", "b", "a", "b", "a", "b"]
    assert sqs.sent == []


def test_a_record_failed_by_any_one_delivery_of_a_duplicated_batch_is_retried() -> None:
    # Given the first of two deliveries fails record "b" (the second succeeds)
    lambdas, sqs = FlakyLambdas(poison={"b"}), FakeSqs()
    lambdas.chaos.duplicate_deliveries = 2

    # When the batch is delivered
    poller(lambdas, sqs)._deliver([record(1, "a"), record(2, "b"), record(3, "c")])

    # Then the batch is retried from "b", again twice
    assert lambdas.delivered == ["a", "a", "b", "c", "b", "c", "b", "c"]
    assert lambdas.invocations == 4
    assert sqs.sent == []


class FakeStreams:
    """One shard whose first read returns `records` and every later read nothing."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.pages = [records]

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, **params: Any) -> dict[str, Any]:
        return {"ShardIterator": "iterator"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        return {"Records": self.pages.pop() if self.pages else []}


def metered_calls(meter: Meter) -> list[tuple[str, str]]:
    return [(call["service"], call["operation"]) for call in meter.calls()]


def test_stream_reads_that_return_records_are_metered_and_idle_polls_are_not(tmp_path: Path) -> None:
    # Given a metered stream poller over a shard holding two records
    meter = Meter(tmp_path / "calls.jsonl")
    meter.reset()
    lambdas, sqs = FakeLambdas(poison=set(), meter=meter), FakeSqs()
    stream = poller(lambdas, sqs, streams=FakeStreams([record(1, "a"), record(2, "b")]))

    # When it polls three times (the last two find nothing)
    read = [stream.poll_once() for _ in range(3)]

    # Then both records were delivered, and only the read that returned them was metered
    assert read == [2, 0, 0]
    assert lambdas.delivered == ["a", "b"]
    assert metered_calls(meter) == [("dynamodbstreams", "GetRecords")]


class FakeQueue:
    """A queue whose first receive returns two messages and every later one nothing."""

    def __init__(self) -> None:
        self.batches = [[sqs_message("m1", "a"), sqs_message("m2", "b")]]
        self.deleted: list[str] = []
        self.made_visible: list[tuple[str, int]] = []

    def receive_message(self, **params: Any) -> dict[str, Any]:
        return {"Messages": self.batches.pop()} if self.batches else {}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:
        self.deleted.extend(e["ReceiptHandle"] for e in Entries)

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> None:
        self.made_visible.extend((e["ReceiptHandle"], e["VisibilityTimeout"]) for e in Entries)


def sqs_message(message_id: str, key: str) -> dict[str, Any]:
    return {"MessageId": message_id, "ReceiptHandle": f"rh-{message_id}", "Body": key, "MD5OfBody": "-"}


class QueueLambdas(FakeLambdas):
    """Fails every message whose body is in `poison`, reporting it by message id."""

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        failures = []
        for message in event["Records"]:
            if message["body"] in self.poison:
                failures.append({"itemIdentifier": message["messageId"]})
            else:
                self.delivered.append(message["body"])
        return {"batchItemFailures": failures}


def test_the_sqs_poller_duplicates_deliveries_and_meters_its_calls_the_same_way(tmp_path: Path) -> None:
    # Given a metered SQS poller, chaos delivering every batch twice, and a function failing message "b"
    meter = Meter(tmp_path / "calls.jsonl")
    meter.reset()
    lambdas, queue = QueueLambdas(poison={"b"}, meter=meter), FakeQueue()
    lambdas.chaos.duplicate_deliveries = 2
    mapping = EventSourceMapping(
        function="f",
        source_arn="arn:aws:sqs:us-east-1:123456789012:q",
        kind="sqs",
        batch_size=10,
        report_batch_item_failures=True,
    )
    sqs = SqsPoller(mapping, cloud=FakeCloud(), lambdas=lambdas, sqs=queue, stop=threading.Event(), retry_delay=7)

    # When it polls twice (the second receive is empty)
    read = [sqs.poll_once(), sqs.poll_once()]

    # Then the batch was delivered twice, "a" deleted, "b" left to come back after the retry delay
    assert read == [2, 0]
    assert lambdas.delivered == ["a", "a"]
    assert queue.deleted == ["rh-m1"]
    assert queue.made_visible == [("rh-m2", 7)]
    # and the meter has the receive that returned messages, the delete and the visibility change
    assert metered_calls(meter) == [
        ("sqs", "ReceiveMessage"),
        ("sqs", "DeleteMessageBatch"),
        ("sqs", "ChangeMessageVisibilityBatch"),
    ]


class CountingStreams(FakeStreams):
    """Counts each call by operation, and hands out numbered iterators."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__(records)
        self.calls: list[str] = []
        self.read_with: list[str] = []

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        self.calls.append("DescribeStream")
        return super().describe_stream(StreamArn)

    def get_shard_iterator(self, **params: Any) -> dict[str, Any]:
        self.calls.append("GetShardIterator")
        return {"ShardIterator": f"fresh-after-{params.get('SequenceNumber', 'start')}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        self.calls.append("GetRecords")
        self.read_with.append(ShardIterator)
        page = super().get_records(ShardIterator, Limit)
        return {**page, "NextShardIterator": f"next-{len(self.read_with)}"}


def test_an_idle_stream_poll_is_one_read_from_where_the_last_read_ended() -> None:
    lambdas, sqs = FakeLambdas(poison=set()), FakeSqs()
    streams = CountingStreams([record(1, "a"), record(2, "b")])
    stream = poller(lambdas, sqs, streams=streams)

    assert [stream.poll_once() for _ in range(3)] == [2, 0, 0]

    assert lambdas.delivered == ["a", "b"]
    assert streams.calls == ["DescribeStream", "GetShardIterator", "GetRecords", "GetRecords", "GetRecords"]
    assert streams.read_with == ["fresh-after-start", "next-1", "next-2"]


def test_after_a_failed_read_the_stream_poller_starts_again_after_the_last_delivered_record() -> None:
    lambdas, sqs = FakeLambdas(poison=set()), FakeSqs()
    streams = CountingStreams([record(1, "a"), record(2, "b")])
    stream = poller(lambdas, sqs, streams=streams)
    assert stream.poll_once() == 2

    reading = streams.get_records

    def reset(**params: Any) -> dict[str, Any]:
        raise ConnectionResetError("the read failed")

    streams.get_records = reset  # type: ignore[method-assign]
    with pytest.raises(ConnectionResetError):
        stream.poll_once()
    streams.get_records = reading  # type: ignore[method-assign]

    assert stream.poll_once() == 0
    assert streams.read_with == ["fresh-after-start", "fresh-after-2"]


class TricklingQueue(FakeQueue):
    """Hands out one message per receive, from a list, then nothing; records each receive's arguments."""

    def __init__(self, bodies: list[str]) -> None:
        super().__init__()
        self.batches = [[sqs_message(f"m{i}", body)] for i, body in reversed(list(enumerate(bodies)))]
        self.receives: list[tuple[int, int]] = []

    def receive_message(self, **params: Any) -> dict[str, Any]:
        self.receives.append((params["MaxNumberOfMessages"], params["WaitTimeSeconds"]))
        return super().receive_message(**params)


def _queue_mapping(batch_size: int, window: int) -> EventSourceMapping:
    return EventSourceMapping(
        function="f",
        source_arn="arn:aws:sqs:us-east-1:123456789012:q",
        kind="sqs",
        batch_size=batch_size,
        report_batch_item_failures=True,
        batching_window_seconds=window,
    )


def test_a_batching_window_gathers_messages_until_the_batch_is_full() -> None:
    lambdas, queue = QueueLambdas(poison=set()), TricklingQueue(["a", "b", "c", "d"])
    poller = SqsPoller(
        _queue_mapping(3, 5), cloud=FakeCloud(), lambdas=lambdas, sqs=queue, stop=threading.Event(), retry_delay=7
    )
    assert poller.poll_once() == 3  # full before the window ended
    assert lambdas.delivered == ["a", "b", "c"]
    assert queue.receives == [(3, 1), (2, 1), (1, 1)]
    assert queue.deleted == ["rh-m0", "rh-m1", "rh-m2"]


def test_a_batching_window_delivers_what_it_has_when_the_window_ends() -> None:
    lambdas, queue = QueueLambdas(poison=set()), TricklingQueue(["a", "b"])
    poller = SqsPoller(
        _queue_mapping(10, 1), cloud=FakeCloud(), lambdas=lambdas, sqs=queue, stop=threading.Event(), retry_delay=7
    )
    started = time.monotonic()
    assert poller.poll_once() == 2
    assert 1.0 <= time.monotonic() - started < 10.0  # waited out the window, then delivered
    assert lambdas.delivered == ["a", "b"]


def test_without_a_window_the_first_messages_are_the_batch() -> None:
    lambdas, queue = QueueLambdas(poison=set()), TricklingQueue(["a", "b"])
    poller = SqsPoller(
        _queue_mapping(10, 0), cloud=FakeCloud(), lambdas=lambdas, sqs=queue, stop=threading.Event(), retry_delay=7
    )
    assert [poller.poll_once(), poller.poll_once()] == [1, 1]
    assert queue.receives == [(10, 1), (10, 1)]
