"""The local cloud's SQS: sends and receives no longer pass over every message in the queue, and the
approximate counts are still exact whenever they are asked for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT_ID
from moto.sqs.models import Message

from local_stack.moto_sqs import skip_message_counts_on_sends_and_receives

BACKLOG = 500


@pytest.fixture
def sqs() -> Iterator[Any]:
    skip_message_counts_on_sends_and_receives()
    with mock_aws():
        yield boto3.client("sqs", region_name="eu-west-1")


@pytest.fixture
def visibility_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a message's visibility is looked at (the counts' pass over the queue does it)."""
    reads = [0]
    real = Message.visible

    def counted(message: Message) -> bool:
        reads[0] += 1
        return real.fget(message)  # type: ignore[misc]

    monkeypatch.setattr(Message, "visible", property(counted))
    return reads


def test_a_send_into_a_backlog_looks_at_no_message(sqs: Any, visibility_reads: list[int]) -> None:
    url = sqs.create_queue(QueueName="backlog")["QueueUrl"]
    for number in range(BACKLOG):
        sqs.send_message(QueueUrl=url, MessageBody=str(number))
    visibility_reads[0] = 0
    sqs.send_message(QueueUrl=url, MessageBody="one more")
    assert visibility_reads[0] == 0


def test_a_receive_from_a_backlog_passes_over_it_once(sqs: Any, visibility_reads: list[int]) -> None:
    url = sqs.create_queue(QueueName="backlog")["QueueUrl"]
    for number in range(BACKLOG):
        sqs.send_message(QueueUrl=url, MessageBody=str(number))
    visibility_reads[0] = 0
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 10
    # One pass to list the visible messages, and one look at each of the ten it takes; moto alone made
    # three passes over the whole queue for each message it returned.
    assert visibility_reads[0] == BACKLOG + 10


def test_the_counts_are_exact_when_asked_for(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="counted")["QueueUrl"]
    for number in range(7):
        sqs.send_message(QueueUrl=url, MessageBody=str(number))
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)
    assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=600)["Messages"]) == 3
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (
        attributes["ApproximateNumberOfMessages"],
        attributes["ApproximateNumberOfMessagesNotVisible"],
        attributes["ApproximateNumberOfMessagesDelayed"],
    ) == ("4", "3", "1")


def test_a_message_past_the_queues_retention_period_is_not_received(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="short", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="kept")
    sqs.send_message(QueueUrl=url, MessageBody="expired")
    queue = get_backend("sqs")[ACCOUNT_ID]["eu-west-1"].queues["short"]
    queue._messages[1].sent_timestamp -= 61_000  # sent 61 s ago, past the queue's 60 s (not the default 4 days)
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert bodies == ["kept"]
