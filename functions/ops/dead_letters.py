"""Dead letters, for the people on call: every dead-letter queue's depth and oldest messages (bodies decoded),
and a redrive of one queue, or one message, back to the queue it came from.

Redriving is safe because every consumer is idempotent (each stage keys its effect on the message's own
ids). A message is sent back to its source queue before it is deleted from the dead-letter queue: a crash
between the two leaves it in both, and the copy redriven later is a duplicate the consumer absorbs; the
other order could lose it. The source is the queue whose redrive policy names the dead-letter queue
(ListDeadLetterSourceQueues), so nothing is ever sent where it did not come from.

Not redriven: a message that answers a Step Functions task token (a payout's execution, a settlement chunk).
Its run may have given up on it since, and compensated (the payout saga releases the funds of a payout it
gave up on): sent again, it could pay out what was released. Those are resolved through their run."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from functions.common.aws import client

RECEIVE_BATCH = 10  # SQS's maximum per ReceiveMessage
# A short receive asks only some of SQS's servers and may come back empty while messages remain: a long poll
# of this many seconds asks them all.
RECEIVE_WAIT_SECONDS = 2
# A message taken to be moved is hidden longer than its send can take with every retry (5 attempts of up to
# 30 s each, functions/common/aws.py), so that no other reader takes it meanwhile.
MOVE_VISIBILITY_SECONDS = 300
# A search for one message stops well before the first messages it holds become visible again.
SEARCH_SECONDS = 120
# A listing hides what it reads only while it reads (then makes it visible again), at most this many messages.
PEEK_VISIBILITY_SECONDS = 10
PEEK_LIMIT = 100
# A message that answers a Step Functions task token belongs to a run that may have given up on it (the token
# expired; the payout saga released the funds): sent again, it could pay out what was already released.
SAGA_TOKEN_FIELD = "task_token"
# Shown as "[redacted]" in listings: a token that can answer a saga, and the buyer's payment method token.
REDACTED_FIELDS = frozenset({SAGA_TOKEN_FIELD, "payment_method"})


class RedriveRefused(Exception):
    """The queue cannot be redriven: it is not a dead-letter queue of this stack, or it has no single source."""


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    sent_at_ms: int
    receive_count: int  # every receive counts: the worker's attempts, and each listing's read
    body: Any  # the decoded JSON body (secrets and tokens redacted), or the text when it is not JSON
    attributes: dict[str, str] = field(default_factory=dict)  # string message attributes (dead_letter_reason)

    def as_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "sent_at_ms": self.sent_at_ms,
            "receive_count": self.receive_count,
            "attributes": self.attributes,
            "body": self.body,
        }


@dataclass(frozen=True)
class DeadLetterQueue:
    name: str
    url: str
    source_urls: tuple[str, ...]
    messages: int  # visible and in flight
    oldest: list[DeadLetter] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "messages": self.messages,
            "source_queues": [url.rsplit("/", 1)[-1] for url in self.source_urls],
            "oldest": [letter.as_json() for letter in self.oldest],
        }


@dataclass(frozen=True)
class Redrive:
    moved: int  # sent back to the source and deleted here
    kept: int  # answers to a saga's task token: left here, to be resolved through the saga
    remaining: int  # messages in the queue once done (visible and in flight): kept ones, and any it did not get


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "[redacted]" if k in REDACTED_FIELDS else _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def _decoded(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def _answers_a_saga(message: dict[str, Any]) -> bool:
    body = _decoded(message["Body"])
    return isinstance(body, dict) and SAGA_TOKEN_FIELD in body


def _letter(message: dict[str, Any]) -> DeadLetter:
    attributes = message.get("Attributes", {})
    return DeadLetter(
        message_id=message["MessageId"],
        sent_at_ms=int(attributes.get("SentTimestamp", 0)),
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        body=_redacted(_decoded(message["Body"])),
        attributes={
            name: value["StringValue"]
            for name, value in message.get("MessageAttributes", {}).items()
            if "StringValue" in value
        },
    )


def _receive(url: str, *, hide_seconds: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (
        client("sqs")
        .receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=RECEIVE_BATCH,
            VisibilityTimeout=hide_seconds,
            WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
            MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        .get("Messages", [])
    )
    return messages


class SqsDeadLetters:
    """The stack's dead-letter queues, by URL (the auditor's DEAD_LETTER_QUEUE_URLS)."""

    def __init__(self, queue_urls: list[str]) -> None:
        self.queue_urls = queue_urls

    def _url(self, name: str) -> str:
        for url in self.queue_urls:
            if url.rsplit("/", 1)[-1] == name:
                return url
        raise RedriveRefused(f"{name} is not one of this stack's dead-letter queues")

    def queue(self, name: str, *, peek: int = 0) -> DeadLetterQueue:
        url = self._url(name)
        sources = client("sqs").list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", [])
        return DeadLetterQueue(
            name=name,
            url=url,
            source_urls=tuple(sources),
            messages=(depth := _depth(url)),
            oldest=self._peek(url, peek) if peek and depth else [],
        )

    def queues(self, *, peek: int = 0) -> list[DeadLetterQueue]:
        return [self.queue(url.rsplit("/", 1)[-1], peek=peek) for url in self.queue_urls]

    def _peek(self, url: str, count: int) -> list[DeadLetter]:
        """The `count` oldest of up to PEEK_LIMIT messages. SQS cannot read a message without receiving it:
        they are received (hidden for a moment, so that each receive returns others), then made visible."""
        held: list[dict[str, Any]] = []
        try:
            while len(held) < PEEK_LIMIT and (received := _receive(url, hide_seconds=PEEK_VISIBILITY_SECONDS)):
                held += received
        finally:
            _release(url, held)
        letters = sorted((_letter(m) for m in held), key=lambda letter: (letter.sent_at_ms, letter.message_id))
        return letters[:count]

    def _source(self, name: str) -> DeadLetterQueue:
        found = self.queue(name)
        if len(found.source_urls) != 1:
            raise RedriveRefused(
                f"{name} is the dead-letter queue of {len(found.source_urls)} queues: there is no one source to "
                "send its messages back to"
            )
        return found

    def redrive(self, name: str, *, message_id: str | None = None) -> Redrive:
        """Move the queue's messages (or only `message_id`) back to their source queue: at most as many as the
        queue held when it began (a message dead-lettered meanwhile may be among them, and another left for the
        next redrive). Answers to a saga's task token are kept here. Messages another reader holds are not
        seen: `remaining` counts what is left once done."""
        queue = self._source(name)
        source = queue.source_urls[0]
        moved = 0
        kept = 0
        seen: set[str] = set()
        held: list[dict[str, Any]] = []  # messages passed over, hidden until done so each receive finds others
        deadline = time.monotonic() + SEARCH_SECONDS
        try:
            while moved < queue.messages and time.monotonic() < deadline:
                received = _receive(queue.url, hide_seconds=MOVE_VISIBILITY_SECONDS)
                if not received or all(m["MessageId"] in seen for m in received):
                    break
                for index, message in enumerate(received):
                    seen.add(message["MessageId"])
                    if message_id is not None and message["MessageId"] != message_id:
                        held.append(message)
                    elif _answers_a_saga(message):
                        kept += 1
                        held.append(message)
                    else:
                        try:
                            _move(message, queue.url, source)
                        except Exception:
                            held += received[index + 1 :]  # the rest of the batch, made visible again
                            raise
                        moved += 1
                if message_id is not None and message_id in seen:
                    break
        finally:
            _release(queue.url, held)
        return Redrive(moved=moved, kept=kept, remaining=_depth(queue.url))


def _depth(url: str) -> int:
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _move(message: dict[str, Any], url: str, source: str) -> None:
    """Sent before deleted: a crash between the two leaves a duplicate (absorbed), never a loss."""
    sent: dict[str, Any] = {"QueueUrl": source, "MessageBody": message["Body"]}
    if message.get("MessageAttributes"):
        # Only the fields SendMessage takes (a received value may carry SQS's reserved list fields too).
        sent["MessageAttributes"] = {
            name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
            for name, value in message["MessageAttributes"].items()
        }
    client("sqs").send_message(**sent)
    client("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _release(url: str, messages: list[dict[str, Any]]) -> None:
    """Make held messages visible again; one that cannot be is visible once its hiding ends anyway."""
    failed = []
    for first in range(0, len(messages), RECEIVE_BATCH):
        answer = client("sqs").change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[first : first + RECEIVE_BATCH])
            ],
        )
        failed += answer.get("Failed", [])
    if failed:
        raise ReleaseFailed(f"{len(failed)} messages stay hidden until their visibility timeout ends: {failed[:3]}")


class ReleaseFailed(Exception):
    """Messages read could not be made visible again (they will be, once their visibility timeout ends)."""
