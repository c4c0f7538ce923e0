"""Lambda's event source mappings, played locally: SQS pollers and DynamoDB stream pollers that call
the function with real batch events and honour partial batch responses. Both share one poll loop, one
way of delivering a batch (duplicated on request, for the chaos tests) and one metered way of calling
AWS on the function's behalf (for the cost meter)."""

from __future__ import annotations

import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from functions.psp.settings import PspWorkerSettings
from local_stack.deploy import EventSourceMapping, LocalCloud
from local_stack.lambda_runtime import InvocationError, LambdaService
from local_stack.template import REGION

log = logging.getLogger("local_stack.pollers")
# A function whose environment has the backoff settings reschedules its own failed records
# (ChangeMessageVisibility, functions/common/queues.py): the poller leaves their visibility alone.
RESCHEDULES_ITS_FAILURES_ENV = PspWorkerSettings.model_fields["retry_base_seconds"].alias
# How often a stream poller lists its stream's shards again (a table's shard never changes on the local
# cloud; Lambda's own poller also lists shards periodically, not per read).
SHARD_LIST_SECONDS = 30.0


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge-style pattern matching as Lambda's event filtering applies it: a dict descends, a list
    of literals or {"prefix": ...} / {"anything-but": ...} / {"exists": ...} rules matches a leaf."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(
            matches(rule, value[key]) if key in value else _absent_allowed(rule) for key, rule in pattern.items()
        )
    if isinstance(pattern, list):
        return any(_leaf(rule, value) for rule in pattern)
    return bool(pattern == value)


def _absent_allowed(rule: Any) -> bool:
    return isinstance(rule, list) and any(isinstance(r, dict) and r.get("exists") is False for r in rule)


def _leaf(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if "prefix" in rule:
            return isinstance(value, str) and value.startswith(rule["prefix"])
        if "exists" in rule:
            return bool(rule["exists"])
        if "anything-but" in rule:
            excluded = rule["anything-but"]
            return value not in (excluded if isinstance(excluded, list) else [excluded])
        return False
    return bool(rule == value)


def passes_filters(record: dict[str, Any], patterns: tuple[dict[str, Any], ...]) -> bool:
    """No filters: every record; otherwise a record matching any one filter (filtered ones are dropped)."""
    return not patterns or any(matches(pattern, record) for pattern in patterns)


def api_operation(method: str) -> str:
    """boto3's method name as the API's operation name (receive_message -> ReceiveMessage), the name the
    workers' call log uses, so one workload's calls add up by operation."""
    return "".join(part.title() for part in method.split("_"))


class EventSourcePoller(threading.Thread, ABC):
    """What every event source mapping shares: the poll loop, metered AWS calls, and handing a batch to
    the function. Subclasses say how to poll (`poll_once`), what identifies a record in a batch failure
    report (`record_id`) and which of their calls are billed per record (`billable`)."""

    idle_wait = 0.0  # seconds to wait after a poll that found nothing (SQS long polls wait server-side)

    def __init__(self, mapping: EventSourceMapping, *, lambdas: LambdaService, stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"{mapping.kind}-{mapping.function}")
        self.mapping = mapping
        self.lambdas = lambdas
        self.stop_event = stop

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                found = self.poll_once()
            except Exception:
                if self.stop_event.is_set():
                    return
                log.exception("%s poller for %s failed; retrying", self.mapping.kind, self.mapping.function)
                self.stop_event.wait(1)
                continue
            if not found and self.idle_wait:
                self.stop_event.wait(self.idle_wait)

    @abstractmethod
    def poll_once(self) -> int:
        """Read the source once and deliver what it had; returns how many records were read."""

    @abstractmethod
    def record_id(self, record: dict[str, Any]) -> str:
        """The record's `itemIdentifier` in a partial batch response."""

    def billable(self, operation: str, response: Any) -> bool:
        """Whether a call is part of the per-record cost (and so metered)."""
        return True

    def aws(self, client: Any, service: str, operation: str, **params: Any) -> Any:
        """One AWS call made on the function's behalf, recorded by the meter when it is billable."""
        response = getattr(client, operation)(**params)
        meter = self.lambdas.meter
        if meter is not None and self.billable(operation, response):
            meter.record_runtime_call(service, api_operation(operation), params)
        return response

    def invoke(self, records: list[dict[str, Any]]) -> set[str]:
        """Hand the batch to the function; returns the ids of the records that failed."""
        failed, _ = self.deliver(records)
        return failed

    def deliver(self, records: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
        """Hand the batch to the function: the ids of the records that failed, and of those among them
        that failed with the whole invocation (an error, a timeout, a dead execution environment).

        Chaos: at-least-once delivery made visible - the batch is handed over `duplicate_deliveries`
        times (or as the fault plan says), and a record failed if any delivery failed it (an invocation
        error fails them all)."""
        failed: set[str] = set()
        failed_invocation: set[str] = set()
        for _ in range(self.lambdas.chaos.deliveries()):
            try:
                result = self.lambdas.invoke(self.mapping.function, {"Records": records})
            except InvocationError as error:
                log.warning("%s failed a batch of %d: %s", self.mapping.function, len(records), error)
                failed_invocation.update(self.record_id(r) for r in records)
                continue
            if self.mapping.report_batch_item_failures:
                failed.update(str(f["itemIdentifier"]) for f in (result or {}).get("batchItemFailures", []))
        return failed | failed_invocation, failed_invocation


class SqsPoller(EventSourcePoller):
    """Receives up to BatchSize messages, invokes, deletes what succeeded. Failed records stay in the
    queue; they become visible again after `retry_delay` seconds (a local shortening of the visibility
    timeout) and reach the DLQ after the queue's maxReceiveCount, as in AWS. A record that a function
    which reschedules its own failures reported failed keeps the visibility that function gave it: like
    Lambda's poller, this one then changes nothing."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        *,
        cloud: LocalCloud,
        lambdas: LambdaService,
        sqs: Any,
        stop: threading.Event,
        retry_delay: int,
        reschedules_its_failures: bool = False,
    ) -> None:
        super().__init__(mapping, lambdas=lambdas, stop=stop)
        self.queue_url = cloud.queue_url_by_arn(mapping.source_arn)
        self.sqs = sqs
        self.retry_delay = retry_delay
        self.reschedules_its_failures = reschedules_its_failures

    def billable(self, operation: str, response: Any) -> bool:
        # Billed in AWS too (Lambda's poller makes these requests). Empty long polls are a fixed cost
        # per queue, not per payment, so the meter leaves them out.
        return operation != "receive_message" or bool(response.get("Messages"))

    def record_id(self, record: dict[str, Any]) -> str:
        return str(record["messageId"])

    def _receive(self, up_to: int, wait_seconds: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.aws(
            self.sqs,
            "sqs",
            "receive_message",
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(up_to, 10),
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return messages

    def _gather(self) -> list[dict[str, Any]]:
        """A batch as Lambda's poller makes one: the first messages, then, with a batching window, more
        until the batch is full or the window (from the first receive) has passed."""
        messages = self._receive(self.mapping.batch_size, 1)
        window = self.mapping.batching_window_seconds
        if not messages or window <= 0:
            return messages
        deadline = time.monotonic() + window
        while len(messages) < self.mapping.batch_size and not self.stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            messages += self._receive(self.mapping.batch_size - len(messages), min(1, int(left)))
            if int(left) == 0:
                time.sleep(min(left, 0.05))  # short of a whole second: look again until the window ends
        return messages

    def poll_once(self) -> int:
        messages = self._gather()
        if not messages:
            return 0
        failed, failed_invocation = self.deliver([self._record(m) for m in messages])
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.aws(
                self.sqs,
                "sqs",
                "delete_message_batch",
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        shorten = failed_invocation if self.reschedules_its_failures else failed
        retry = [m for m in messages if m["MessageId"] in shorten]
        if retry:
            self.aws(
                self.sqs,
                "sqs",
                "change_message_visibility_batch",
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.retry_delay}
                    for i, m in enumerate(retry)
                ],
            )
        return len(messages)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": a.get("StringValue"),
                    "binaryValue": a.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": a["DataType"],
                }
                for name, a in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.mapping.source_arn,
            "awsRegion": REGION,
        }


class StreamPoller(EventSourcePoller):
    """Reads a DynamoDB stream shard in order. A failed batch is retried from its first failed record;
    a record still failing after MaximumRetryAttempts goes to the on-failure queue and the shard moves
    on, as AWS does with BisectBatchOnFunctionError."""

    idle_wait = 0.25

    def __init__(
        self,
        mapping: EventSourceMapping,
        *,
        cloud: LocalCloud,
        lambdas: LambdaService,
        streams: Any,
        sqs: Any,
        stop: threading.Event,
        retry_delay: int,
    ) -> None:
        super().__init__(mapping, lambdas=lambdas, stop=stop)
        self.cloud = cloud
        self.streams = streams
        self.sqs = sqs
        self.retry_delay = retry_delay
        self.positions: dict[str, str | None] = {}  # shard id -> last delivered sequence number
        self.next_iterators: dict[str, str] = {}  # shard id -> where the last read ended
        self.shard_ids: list[str] | None = None
        self.shards_listed_at = 0.0

    def billable(self, operation: str, response: Any) -> bool:
        # Reads that return records (free in AWS when Lambda reads the stream, but counted) and sends to
        # the on-failure queue. Listing shards and taking iterators is per-poll overhead, like an empty read.
        if operation == "get_records":
            return bool(response.get("Records"))
        return operation == "send_message"

    def record_id(self, record: dict[str, Any]) -> str:
        return str(record["dynamodb"]["SequenceNumber"])

    def _iterator(self, shard_id: str) -> str:
        # Read on from where the last read ended (its NextShardIterator: the local moto server rolls a failed
        # transaction back in place, so a shard stays the same object and an iterator chain sees every later
        # record). Without one (the first read, or after a read or a delivery raised): a fresh iterator
        # after the last delivered record.
        following = self.next_iterators.pop(shard_id, None)
        if following is not None:
            return following
        last = self.positions.get(shard_id)
        extra: dict[str, Any] = {}
        if last is None:  # nothing delivered yet: the mapping's starting position (the stack uses TRIM_HORIZON)
            kind = self.mapping.starting_position or "TRIM_HORIZON"
        else:
            kind, extra = "AFTER_SEQUENCE_NUMBER", {"SequenceNumber": last}
        iterator: str = self.aws(
            self.streams,
            "dynamodbstreams",
            "get_shard_iterator",
            StreamArn=self.mapping.source_arn,
            ShardId=shard_id,
            ShardIteratorType=kind,
            **extra,
        )["ShardIterator"]
        return iterator

    def _shard_ids(self) -> list[str]:
        # Listed again every SHARD_LIST_SECONDS, not on every poll: an idle poll is then one request.
        now = time.monotonic()
        if self.shard_ids is None or now - self.shards_listed_at >= SHARD_LIST_SECONDS:
            description = self.aws(
                self.streams, "dynamodbstreams", "describe_stream", StreamArn=self.mapping.source_arn
            )
            self.shard_ids = [shard["ShardId"] for shard in description["StreamDescription"]["Shards"]]
            self.shards_listed_at = now
        return self.shard_ids

    def poll_once(self) -> int:
        read = 0
        for shard_id in self._shard_ids():
            page = self.aws(
                self.streams,
                "dynamodbstreams",
                "get_records",
                ShardIterator=self._iterator(shard_id),
                Limit=self.mapping.batch_size,
            )
            records = page.get("Records", [])
            if records:
                read += len(records)
                self._deliver(records)
                self.positions[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
            if page.get("NextShardIterator"):
                self.next_iterators[shard_id] = page["NextShardIterator"]
        return read

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        pending = [r for r in map(self._record, records) if passes_filters(r, self.mapping.filter_patterns)]
        attempts = 0
        while pending and not self.stop_event.is_set():
            failed = self.invoke(pending)
            if not failed:
                return
            # Retried from the first failed record (an unknown id in the report: from the start).
            first_failed = next((i for i, r in enumerate(pending) if self.record_id(r) in failed), 0)
            pending = pending[first_failed:]
            attempts += 1
            limit = self.mapping.maximum_retry_attempts
            if limit is not None and limit >= 0 and attempts > limit:
                # As bisecting on error ends up doing in AWS: only the record that keeps failing goes to
                # the on-failure destination; the records after it are still delivered.
                self._give_up(pending[:1])
                pending, attempts = pending[1:], 0
                continue
            self.stop_event.wait(self.retry_delay)

    def _give_up(self, pending: list[dict[str, Any]]) -> None:
        if not self.mapping.on_failure_arn:
            return
        first, last = pending[0]["dynamodb"], pending[-1]["dynamodb"]
        self.aws(
            self.sqs,
            "sqs",
            "send_message",
            QueueUrl=self.cloud.queue_url_by_arn(self.mapping.on_failure_arn),
            MessageBody=json.dumps(
                {
                    "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": self.mapping.function},
                    "DDBStreamBatchInfo": {
                        "streamArn": self.mapping.source_arn,
                        "batchSize": len(pending),
                        "startSequenceNumber": first["SequenceNumber"],
                        "endSequenceNumber": last["SequenceNumber"],
                    },
                }
            ),
        )

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = created.timestamp()
        return {
            "eventID": record.get("eventID"),
            "eventName": record["eventName"],
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": dynamodb,
            "eventSourceARN": self.mapping.source_arn,
        }


def start_pollers(
    cloud: LocalCloud,
    *,
    lambdas: LambdaService,
    clients: Any,
    stop: threading.Event,
    retry_delay: int,
    sqs_pollers_per_queue: int = 2,
) -> list[threading.Thread]:
    threads: list[threading.Thread] = []
    for mapping in cloud.event_sources:
        if mapping.kind == "sqs":
            reschedules = RESCHEDULES_ITS_FAILURES_ENV in cloud.functions[mapping.function].environment
            threads.extend(
                SqsPoller(
                    mapping,
                    cloud=cloud,
                    lambdas=lambdas,
                    sqs=clients("sqs"),
                    stop=stop,
                    retry_delay=retry_delay,
                    reschedules_its_failures=reschedules,
                )
                for _ in range(sqs_pollers_per_queue)
            )
        else:
            threads.append(
                StreamPoller(
                    mapping,
                    cloud=cloud,
                    lambdas=lambdas,
                    streams=clients("dynamodbstreams"),
                    sqs=clients("sqs"),
                    stop=stop,
                    retry_delay=retry_delay,
                )
            )
    for thread in threads:
        thread.start()
    return threads
