"""SQS adapter for publishing messages, and the shared BatchProcessor consumer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Json, create_model

from functions.common.aws import client

M = TypeVar("M", bound=BaseModel)


class QueuePublisher:
    """Sends pydantic messages to one queue. Group ids only for FIFO queues."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def publish(self, message: BaseModel) -> None:
        client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=message.model_dump_json())

    def publish_many(self, messages: Sequence[BaseModel]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(i), "MessageBody": m.model_dump_json()} for i, m in enumerate(chunk)]
            response = client("sqs").send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = response.get("Failed") or []
            if failed:
                # Raising makes the caller's invocation fail and be retried; the receivers are idempotent.
                raise RuntimeError(f"SQS refused {len(failed)} of {len(entries)} messages: {failed[0].get('Code')}")


def record_model(model: type[M]) -> type[SqsRecordModel]:
    """An SQS record model whose body is parsed as `model` (a bad body fails only its own record)."""
    body_type: Any = Json[model]  # type: ignore[misc,valid-type]
    record: type[SqsRecordModel] = create_model(
        f"{model.__name__}Record", __base__=SqsRecordModel, body=(body_type, ...)
    )
    return record


def consume_batch(
    event: dict[str, Any], context: LambdaContext, record_type: type[SqsRecordModel], handle: Callable[[Any], None]
) -> PartialItemFailureResponse:
    """Process an SQS batch record by record; failed records are reported, not the whole batch."""
    processor = BatchProcessor(event_type=EventType.SQS, model=record_type)

    def record_handler(record: Any) -> None:
        handle(record.body)

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
