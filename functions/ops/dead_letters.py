"""Dead letters, for the people on call: every dead-letter queue's depth and oldest messages (bodies decoded),
and a redrive of one queue, or one message, back to the queue it came from.

Redriving is safe because every consumer is idempotent (each stage keys its effect on the message's own
ids). A message is sent back to its source queue before it is deleted from the dead-letter queue: a crash
between the two leaves it in both, and the copy redriven later is a duplicate the consumer absorbs; the
other order could lose it. The source is the queue whose redrive policy names the dead-letter queue
(ListDeadLetterSourceQueues), so nothing is ever sent where it did not come from."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from functions.common.aws import client

RECEIVE_BATCH = 10  # SQS's maximum per ReceiveMessage
# A message taken to be moved (or read) is hidden this long: enough for its send and delete.
MOVE_VISIBILITY_SECONDS = 60
# A listing reads at most this many messages of a queue to find its oldest.
PEEK_LIMIT = 100


class RedriveRefused(Exception):
    """The queue cannot be redriven: it is not a dead-letter queue of this stack, or it has no single source."""


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    sent_at_ms: int
    receive_count: int
    body: Any  # the decoded JSON body, or the text when it is not JSON

    def as_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "sent_at_ms": self.sent_at_ms,
            "receive_count": self.receive_count,
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


def _decoded(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def _letter(message: dict[str, Any]) -> DeadLetter:
    attributes = message.get("Attributes", {})
    return DeadLetter(
        message_id=message["MessageId"],
        sent_at_ms=int(attributes.get("SentTimestamp", 0)),
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        body=_decoded(message["Body"]),
    )


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
        attributes = client("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        sources = client("sqs").list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", [])
        return DeadLetterQueue(
            name=name,
            url=url,
            source_urls=tuple(sources),
            messages=sum(int(value) for value in attributes.values()),
            oldest=self._peek(url, peek) if peek else [],
        )

    def queues(self, *, peek: int = 0) -> list[DeadLetterQueue]:
        return [self.queue(url.rsplit("/", 1)[-1], peek=peek) for url in self.queue_urls]

    def _peek(self, url: str, count: int) -> list[DeadLetter]:
        """The `count` oldest of up to PEEK_LIMIT messages. SQS cannot read a message without receiving it:
        they are received (hidden, so that each receive returns others), then made visible again at once."""
        held: list[dict[str, Any]] = []
        try:
            while len(held) < PEEK_LIMIT:
                received = (
                    client("sqs")
                    .receive_message(
                        QueueUrl=url,
                        MaxNumberOfMessages=RECEIVE_BATCH,
                        VisibilityTimeout=MOVE_VISIBILITY_SECONDS,
                        WaitTimeSeconds=0,
                        MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
                    )
                    .get("Messages", [])
                )
                if not received:
                    break
                held += received
        finally:
            self._release(url, held)
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

    def redrive(self, name: str, *, message_id: str | None = None) -> int:
        """Move the queue's messages (or only `message_id`) back to their source queue; returns how many
        moved. At most as many as the queue held when it started: a message dead-lettered again while this
        runs is left for the next redrive."""
        queue = self._source(name)
        source = queue.source_urls[0]
        moved = 0
        held: list[dict[str, Any]] = []  # other messages, hidden while the one wanted is looked for
        try:
            while moved < queue.messages:
                received = (
                    client("sqs")
                    .receive_message(
                        QueueUrl=queue.url,
                        MaxNumberOfMessages=RECEIVE_BATCH,
                        VisibilityTimeout=MOVE_VISIBILITY_SECONDS,
                        WaitTimeSeconds=0,
                        MessageAttributeNames=["All"],
                    )
                    .get("Messages", [])
                )
                if not received:
                    break
                for message in received:
                    if message_id is None or message["MessageId"] == message_id:
                        self._move(message, queue.url, source)
                        moved += 1
                    else:
                        held.append(message)
                if message_id is not None and moved:
                    break
        finally:
            self._release(queue.url, held)
        return moved

    @staticmethod
    def _move(message: dict[str, Any], url: str, source: str) -> None:
        sent: dict[str, Any] = {"QueueUrl": source, "MessageBody": message["Body"]}
        if message.get("MessageAttributes"):
            # Only the fields SendMessage takes (a received value may carry SQS's reserved list fields too).
            sent["MessageAttributes"] = {
                name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
                for name, value in message["MessageAttributes"].items()
            }
        client("sqs").send_message(**sent)
        client("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    @staticmethod
    def _release(url: str, messages: list[dict[str, Any]]) -> None:
        for first in range(0, len(messages), RECEIVE_BATCH):
            client("sqs").change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(messages[first : first + RECEIVE_BATCH])
                ],
            )
