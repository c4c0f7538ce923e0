"""SQS adapter for publishing messages, and the shared BatchProcessor consumer every queue worker uses.

The consumer gives every worker three things:
- partial batch responses: a failed record is reported, its neighbours are not re-run;
- a time budget: a record is started only while the invocation has time left to finish it (the worker's
  longest record plus a margin); the rest are handed back as failures before the function timeout;
- bounded concurrency: up to `concurrency` records of one batch run at once, on threads.
A worker that passes a `FailedRecords` adapter also decides each failed record's fate itself: backoff by
age through ChangeMessageVisibility, or the dead-letter queue (functions/common/backoff.py)."""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Json, ValidationError, create_model

from functions.common.aws import client
from functions.common.backoff import (
    DeadLetter,
    FailureKind,
    NotStarted,
    RetryPolicy,
    TransientError,
    after_failure,
)
from functions.common.observability import logger, tracer

M = TypeVar("M", bound=BaseModel)

# The default longest time one record of a worker without a PSP call may take (DynamoDB and SQS calls,
# with the SDK's retries), and the time kept back at the end of every invocation to answer.
DEFAULT_RECORD_SECONDS = 5.0
DEFAULT_MARGIN_SECONDS = 2.0
# AWS error codes that a later retry heals: throttling and the service's own failures.
_TRANSIENT_AWS_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestThrottled",
    }
)


def message_body(message: BaseModel) -> str:
    """A message as sent: fields at their default are left out. Each receiver's model has the same
    defaults, so nothing is lost; and while a deploy rolls out, a receiver still running the code from before
    a field was added (its models refuse unknown fields) can read every message that does not use it."""
    return message.model_dump_json(exclude_defaults=True)


class QueuePublisher:
    """Sends pydantic messages to one queue. Group ids only for FIFO queues."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def publish(self, message: BaseModel) -> None:
        client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=message_body(message))

    def publish_many(self, messages: Sequence[BaseModel]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(i), "MessageBody": message_body(m)} for i, m in enumerate(chunk)]
            response = client("sqs").send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = response.get("Failed") or []
            if failed:
                # Raising makes the caller's invocation fail and be retried; the receivers are idempotent.
                raise RuntimeError(f"SQS refused {len(failed)} of {len(entries)} messages: {failed[0].get('Code')}")


class SqsRecordModel(BaseModel):
    """The fields of an SQS record that the consumer reads. Our own rather than Powertools' parser models:
    importing those builds every event source's models, which costs each worker's cold start."""

    model_config = ConfigDict(extra="ignore")

    messageId: str  # SQS's field names
    receiptHandle: str
    eventSourceARN: str
    body: Any


def record_model(model: type[M]) -> type[SqsRecordModel]:
    """An SQS record model whose body is parsed as `model` (a bad body fails only its own record). Built once
    per worker process, at import."""
    body_type: Any = Json[model]  # type: ignore[misc,valid-type]
    record: type[SqsRecordModel] = create_model(
        f"{model.__name__}Record", __base__=SqsRecordModel, body=(body_type, ...)
    )
    return record


def failure_kind(error: BaseException) -> FailureKind:
    """Transient: marked so (the PSP, a spent budget), or AWS throttling and service failures; else an error."""
    if isinstance(error, TransientError):
        return "transient"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return "transient" if code in _TRANSIENT_AWS_CODES or status >= 500 else "error"
    if isinstance(error, BotoCoreError):
        return "transient"  # the SDK could not reach AWS (connection, timeout) after its own retries
    return "error"


class FailedRecords(Protocol):
    def settle(self, record: dict[str, Any], kind: FailureKind) -> DeadLetter | None:
        """Reschedule the failed record (it stays reported as failed), or move it to the dead-letter queue
        (returned; it is then reported as done, so the event source deletes it from its queue)."""


class SqsFailedRecords:
    """Backoff by age for a worker's failed records: ChangeMessageVisibility on its own queue, or a copy
    sent to its dead-letter queue (with the reason as a message attribute)."""

    def __init__(
        self,
        policy: RetryPolicy,
        dead_letter_queue_url: str,
        *,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.dead_letter_queue_url = dead_letter_queue_url
        self._draw = draw
        self._clock = clock
        self._queue_urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def settle(self, record: dict[str, Any], kind: FailureKind) -> DeadLetter | None:
        attributes = record.get("attributes") or {}
        receive_count = int(attributes.get("ApproximateReceiveCount") or 1)
        sent_ms = int(attributes.get("SentTimestamp") or self._clock() * 1000)
        age_seconds = self._clock() - sent_ms / 1000
        verdict = after_failure(
            kind, receive_count=receive_count, age_seconds=age_seconds, policy=self.policy, draw=self._draw
        )
        if isinstance(verdict, DeadLetter):
            self._dead_letter(record, verdict)
            return verdict
        client("sqs").change_message_visibility(
            QueueUrl=self._queue_url(record["eventSourceARN"]),
            ReceiptHandle=record["receiptHandle"],
            VisibilityTimeout=verdict.delay_seconds,
        )
        return None

    def _dead_letter(self, record: dict[str, Any], verdict: DeadLetter) -> None:
        attributes = {
            name: {
                "DataType": value["dataType"],
                **({"StringValue": value["stringValue"]} if value.get("stringValue") is not None else {}),
                **({"BinaryValue": value["binaryValue"]} if value.get("binaryValue") is not None else {}),
            }
            for name, value in (record.get("messageAttributes") or {}).items()
        }
        attributes["dead_letter_reason"] = {"DataType": "String", "StringValue": verdict.reason}
        attributes["source_message_id"] = {"DataType": "String", "StringValue": record["messageId"]}
        client("sqs").send_message(
            QueueUrl=self.dead_letter_queue_url, MessageBody=record["body"], MessageAttributes=attributes
        )

    def _queue_url(self, queue_arn: str) -> str:
        with self._lock:
            if queue_arn not in self._queue_urls:
                *_, account, name = queue_arn.split(":")
                response = client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
                self._queue_urls[queue_arn] = response["QueueUrl"]
            return self._queue_urls[queue_arn]


@dataclass(frozen=True)
class BatchOptions:
    concurrency: int = 1  # records of one batch handled at once
    record_seconds: float = DEFAULT_RECORD_SECONDS  # the longest one record may take
    margin_seconds: float = DEFAULT_MARGIN_SECONDS  # kept back at the end of the invocation
    failed_records: FailedRecords | None = field(default=None)  # None: failures come back per the queue


class ConcurrentBatchProcessor(BatchProcessor):
    """Powertools' SQS BatchProcessor, with up to `concurrency` records in flight at once (each failure is
    still its own record's). The X-Ray trace entity follows the records onto their threads."""

    def __init__(self, *, concurrency: int, raise_on_entire_batch_failure: bool) -> None:
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=raise_on_entire_batch_failure)
        self.concurrency = concurrency

    def process(self) -> list[tuple[Any, ...]]:
        if self.concurrency <= 1 or len(self.records) <= 1:
            return [self._run(record) for record in self.records]
        adopt_trace = _trace_entity_adopter()

        def run(record: dict[str, Any]) -> tuple[Any, ...]:
            adopt_trace()
            return self._run(record)

        if threading.current_thread().name.startswith(RECORD_THREAD_PREFIX):
            # Already on a record thread (a handler that batches inside a record): the shared pool's
            # threads could all be waiting on each other, so these records run here, one by one.
            return [self._run(record) for record in self.records]
        return list(record_threads(self.concurrency).map(run, self.records))

    def _run(self, record: dict[str, Any]) -> tuple[Any, ...]:
        logger.thread_safe_clear_keys()  # keys a record's handler set for its own log lines
        return self._process_record(record)


RECORD_THREAD_PREFIX = "record"


@functools.cache
def record_threads(concurrency: int) -> ThreadPoolExecutor:
    """One pool per concurrency for the life of the execution environment. Its threads outlive an
    invocation, and with them the DynamoDB resources each thread caches (functions/common/dynamo.py):
    a new pool per batch built every thread's boto3 resources again on every invocation, about half of
    the executor's CPU time."""
    return ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=RECORD_THREAD_PREFIX)


def _trace_entity_adopter() -> Callable[[], None]:
    """X-Ray keeps the current segment per thread: hand the invocation's to each record thread."""
    if tracer.disabled:
        return lambda: None
    recorder: Any = tracer.provider
    entity = recorder.get_trace_entity()
    return lambda: recorder.set_trace_entity(entity)


def consume_batch(
    event: dict[str, Any],
    context: LambdaContext,
    record_type: type[SqsRecordModel],
    handle: Callable[[Any], None],
    options: BatchOptions = BatchOptions(),
) -> PartialItemFailureResponse:
    """Process an SQS batch; failed records are reported, not the whole batch."""
    failed_records = options.failed_records
    # A worker that reschedules its failed records answers with every record failed rather than raising:
    # an invocation error would be retried as a whole, by the queue's visibility timeout.
    processor = ConcurrentBatchProcessor(
        concurrency=options.concurrency, raise_on_entire_batch_failure=failed_records is None
    )
    needed_ms = (options.record_seconds + options.margin_seconds) * 1000

    def attempt(raw: dict[str, Any]) -> tuple[FailureKind, Exception] | None:
        if context.get_remaining_time_in_millis() < needed_ms:
            return "transient", NotStarted("too little time left in this invocation to start the record")
        try:
            parsed = record_type.model_validate(raw)
        except ValidationError as error:
            return "poison", error
        try:
            handle(parsed.body)
        except Exception as error:  # noqa: BLE001 - classified, logged and re-raised or dead-lettered below
            return failure_kind(error), error
        return None

    def record_handler(record: SQSRecord) -> None:
        raw = record.raw_event
        failure = attempt(raw)
        if failure is None:
            return
        kind, error = failure
        _log_failure(raw, kind, error)
        if failed_records is None or _settle(failed_records, raw, kind) is None:
            raise error
        # Dead-lettered: reported as done, so the event source deletes it from the worker's queue.

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


def _log_failure(raw: dict[str, Any], kind: FailureKind, error: BaseException) -> None:
    extra = {"message_id": raw.get("messageId"), "failure": kind, "error_type": type(error).__name__}
    if kind == "transient":
        logger.info("record failed transiently; retried later", extra={**extra, "error": str(error)})
    elif kind == "poison":
        # Not the validation error itself: it quotes the body.
        logger.warning("record body unreadable", extra=extra)
    else:
        logger.warning("record failed", extra=extra, exc_info=error)


def _settle(failed_records: FailedRecords, raw: dict[str, Any], kind: FailureKind) -> DeadLetter | None:
    try:
        verdict = failed_records.settle(raw, kind)
    except (ClientError, BotoCoreError):
        # The record stays reported as failed and comes back after the queue's visibility timeout.
        logger.exception("could not reschedule or dead-letter a failed record", extra={"message_id": raw["messageId"]})
        return None
    if verdict is not None:
        logger.error(
            "record moved to the dead-letter queue", extra={"message_id": raw["messageId"], "reason": verdict.reason}
        )
    return verdict
