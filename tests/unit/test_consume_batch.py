"""The shared SQS consumer: records of a batch run concurrently up to a bound, each failure stays its own
record's, a record is started only while the invocation has time left for it, and a worker that reschedules
its own failures gets each failure classified (transient, error, poison) and never an invocation error."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError, EndpointConnectionError
from pydantic import BaseModel

from functions.common.backoff import DeadLetter, FailureKind, TransientError
from functions.common.queues import BatchOptions, consume_batch, failure_kind, record_model


class Work(BaseModel):
    id: str
    outcome: str = "ok"  # ok | transient | error
    sleep: float = 0.0


RECORD = record_model(Work)


@dataclass
class Context:
    """Lambda's context, with a clock that the test moves."""

    remaining_ms: int = 30_000
    function_name: str = "worker"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:worker"
    aws_request_id: str = "req"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Settled:
    calls: list[tuple[str, FailureKind]] = field(default_factory=list)
    dead_letter: set[str] = field(default_factory=set)  # ids to dead-letter
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settle(self, record: dict[str, Any], kind: FailureKind) -> DeadLetter | None:
        with self.lock:
            self.calls.append((record["messageId"], kind))
        return DeadLetter("poison") if record["messageId"] in self.dead_letter else None


def event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"h{i}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(time.time() * 1000)),
                    "SenderId": "s",
                    "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": "x",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def work(id_: str, outcome: str = "ok", sleep: float = 0.0) -> str:
    return json.dumps({"id": id_, "outcome": outcome, "sleep": sleep})


class Handler:
    def __init__(self, context: Context | None = None, spend_ms: int = 0) -> None:
        self.done: list[str] = []
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()
        self._context = context
        self._spend_ms = spend_ms

    def __call__(self, item: Work) -> None:
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(item.sleep)
            if self._context is not None:
                self._context.remaining_ms -= self._spend_ms  # each record uses this much of the invocation
            if item.outcome == "transient":
                raise TransientError("the PSP is slow")
            if item.outcome == "error":
                raise ValueError("a bug")
            with self._lock:
                self.done.append(item.id)
        finally:
            with self._lock:
                self.running -= 1


def failures(response: Any) -> list[str]:
    return sorted(f["itemIdentifier"] for f in response["batchItemFailures"])


def test_records_run_concurrently_up_to_the_bound() -> None:
    handler = Handler()
    bodies = [work(f"w{i}", sleep=0.2) for i in range(10)]
    started = time.monotonic()
    response = consume_batch(event(*bodies), Context(), RECORD, handler, BatchOptions(concurrency=5))
    elapsed = time.monotonic() - started
    assert failures(response) == []
    assert sorted(handler.done) == sorted(f"w{i}" for i in range(10))
    assert handler.most_running == 5
    assert elapsed < 1.0  # two rounds of 0.2 s, not ten


def test_one_slow_or_failing_record_does_not_fail_its_neighbours() -> None:
    handler = Handler()
    bodies = [work("a"), work("b", "error"), work("c", sleep=0.3), work("d", "transient")]
    response = consume_batch(event(*bodies), Context(), RECORD, handler, BatchOptions(concurrency=4))
    assert failures(response) == ["m1", "m3"]
    assert sorted(handler.done) == ["a", "c"]


def test_without_a_failure_adapter_a_batch_that_all_failed_is_an_invocation_error() -> None:
    with pytest.raises(BatchProcessingError):
        consume_batch(event(work("a", "error")), Context(), RECORD, Handler(), BatchOptions())


def test_records_are_started_only_while_there_is_time_to_finish_them() -> None:
    # Given each record may take 5 s, 2 s are kept back, and each record actually uses 4 s of a 16 s budget
    context = Context(remaining_ms=16_000)
    handler = Handler(context, spend_ms=4_000)
    settled = Settled()
    options = BatchOptions(concurrency=1, record_seconds=5, margin_seconds=2, failed_records=settled)
    # When a batch of five arrives
    response = consume_batch(event(*[work(f"w{i}") for i in range(5)]), context, RECORD, handler, options)
    # Then three are started (with 16, 12 and 8 s left: each >= 5 + 2 s) and the two others are handed back
    # unstarted, as transient failures, while 4 s of the invocation are still left
    assert handler.done == ["w0", "w1", "w2"]
    assert failures(response) == ["m3", "m4"]
    assert settled.calls == [("m3", "transient"), ("m4", "transient")]
    assert context.remaining_ms == 4_000


def test_each_failure_is_classified_and_a_dead_lettered_record_is_reported_done() -> None:
    settled = Settled(dead_letter={"m3"})
    bodies = [work("a", "transient"), work("b", "error"), work("c"), "not json"]
    response = consume_batch(
        event(*bodies),
        Context(),
        RECORD,
        Handler(),
        BatchOptions(concurrency=2, failed_records=settled),
    )
    assert sorted(settled.calls) == [("m0", "transient"), ("m1", "error"), ("m3", "poison")]
    # The poison record went to the dead-letter queue: the event source must delete it, not retry it
    assert failures(response) == ["m0", "m1"]


def test_a_worker_that_reschedules_its_failures_answers_even_when_every_record_failed() -> None:
    settled = Settled()
    response = consume_batch(
        event(work("a", "transient"), work("b", "transient")),
        Context(),
        RECORD,
        Handler(),
        BatchOptions(concurrency=2, failed_records=settled),
    )
    assert failures(response) == ["m0", "m1"]


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "UpdateItem")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TransientError("x"), "transient"),
        (_client_error("ProvisionedThroughputExceededException", 400), "transient"),
        (_client_error("ThrottlingException", 400), "transient"),
        (_client_error("InternalServerError", 500), "transient"),
        (EndpointConnectionError(endpoint_url="http://x"), "transient"),
        (_client_error("ValidationException", 400), "error"),
        (_client_error("AccessDeniedException", 400), "error"),
        (ValueError("a bug"), "error"),
    ],
)
def test_what_counts_as_transient(error: Exception, kind: str) -> None:
    assert failure_kind(error) == kind


def test_record_threads_outlive_the_invocation_and_a_nested_batch_runs_inline() -> None:
    seen: list[threading.Thread] = []
    nested_done: list[str] = []

    def outer(item: Work) -> None:
        seen.append(threading.current_thread())
        # A record that consumes a batch of its own must not wait on the shared pool's busy threads.
        inner = consume_batch(
            event(work(f"{item.id}-1"), work(f"{item.id}-2")),
            Context(),
            RECORD,
            lambda w: nested_done.append(w.id),
            BatchOptions(concurrency=2),
        )
        assert failures(inner) == []

    runner = threading.Thread(
        target=lambda: consume_batch(event(work("a"), work("b")), Context(), RECORD, outer, BatchOptions(concurrency=2))
    )
    runner.start()
    runner.join(timeout=20)
    assert not runner.is_alive()  # no deadlock
    assert sorted(nested_done) == ["a-1", "a-2", "b-1", "b-2"]
    consume_batch(event(work("c"), work("d")), Context(), RECORD, outer, BatchOptions(concurrency=2))
    assert len(seen) == 4
    # Both invocations ran on at most the pool's two threads, and they are still alive afterwards
    # (a pool per batch would have shut its threads down when the batch ended).
    assert len(set(seen)) <= 2
    assert all(thread.is_alive() and thread.name.startswith("record") for thread in seen)
