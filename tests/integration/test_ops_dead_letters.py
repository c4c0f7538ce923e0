"""`payments ops` dead letters against the template's queues in moto: each dead-letter queue's depth, its
source (from the redrive policy) and its oldest messages decoded; a redrive of a queue or of one message
back to the source, attributes kept; and the refusals, which move nothing."""

from __future__ import annotations

import json
from collections.abc import Callable

import boto3
import pytest

from functions.auditor.settings import AuditorSettings
from functions.ops.dead_letters import Redrive, RedriveRefused, SqsDeadLetters
from local_stack.deploy import LocalCloud

AUDITOR = "functions.auditor.handler.handler"


@pytest.fixture
def dead_letters(cloud: LocalCloud, use_function_env: Callable[[str], None]) -> SqsDeadLetters:
    use_function_env(AUDITOR)
    return SqsDeadLetters(AuditorSettings.from_env().queue_urls)


def _url(dead_letters: SqsDeadLetters, fragment: str) -> str:
    return next(url for url in dead_letters.queue_urls if fragment in url.rsplit("/", 1)[-1])


def _name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _drain(url: str) -> list[dict[str, object]]:
    messages = []
    while (
        received := boto3.client("sqs")
        .receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60)
        .get("Messages", [])
    ):
        messages += received
    return messages


def _plant(url: str, *bodies: str, reason: str | None = None) -> list[str]:
    sqs = boto3.client("sqs")
    attributes = {"trace": {"DataType": "String", "StringValue": "t-1"}}
    if reason is not None:
        attributes["dead_letter_reason"] = {"DataType": "String", "StringValue": reason}
    return [sqs.send_message(QueueUrl=url, MessageBody=b, MessageAttributes=attributes)["MessageId"] for b in bodies]


def test_every_dead_letter_queue_of_the_stack_has_exactly_one_source_queue(dead_letters: SqsDeadLetters) -> None:
    queues = dead_letters.queues()
    assert len(queues) == len(dead_letters.queue_urls) > 10
    assert {q.name: len(q.source_urls) for q in queues if len(q.source_urls) != 1} == {}
    assert all(q.messages == 0 and q.oldest == [] for q in queues)


def test_the_listing_shows_depth_source_and_the_oldest_bodies_decoded_and_leaves_them(
    dead_letters: SqsDeadLetters,
) -> None:
    dlq = _url(dead_letters, "WalletQueueDlq")
    _plant(dlq, json.dumps({"payment_order_id": "po_1", "amount": 1500}), json.dumps({"payment_order_id": "po_2"}))
    _plant(dlq, "not json")

    queue = dead_letters.queue(_name(dlq), peek=2)

    assert queue.messages == 3
    assert [_name(url) for url in queue.source_urls] == [_name(_url_of_source(dlq))]
    assert len(queue.oldest) == 2
    assert {str(letter.body) for letter in dead_letters.queue(_name(dlq), peek=10).oldest} == {
        str({"payment_order_id": "po_1", "amount": 1500}),
        str({"payment_order_id": "po_2"}),
        "not json",
    }
    # Peeking received them without hiding them: all three are still there and visible
    assert dead_letters.queue(_name(dlq)).messages == 3
    assert len(_drain(dlq)) == 3


def _url_of_source(dlq: str) -> str:
    return str(boto3.client("sqs").list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"][0])


def test_a_redrive_moves_every_message_back_to_its_source_with_its_attributes(
    dead_letters: SqsDeadLetters,
) -> None:
    dlq = _url(dead_letters, "LedgerQueueDlq")
    bodies = [json.dumps({"n": n}) for n in range(13)]  # more than one receive's worth
    _plant(dlq, *bodies)

    done = dead_letters.redrive(_name(dlq))

    assert done == Redrive(moved=13, kept=0, remaining=0)
    assert dead_letters.queue(_name(dlq)).messages == 0
    arrived = _drain(_url_of_source(dlq))
    assert sorted(m["Body"] for m in arrived) == sorted(bodies)
    assert all(m["MessageAttributes"] == {"trace": {"DataType": "String", "StringValue": "t-1"}} for m in arrived)


def test_a_redrive_of_one_message_moves_only_it_and_leaves_the_others_visible(dead_letters: SqsDeadLetters) -> None:
    dlq = _url(dead_letters, "WalletQueueDlq")
    ids = _plant(dlq, *[json.dumps({"n": n}) for n in range(15)])

    done = dead_letters.redrive(_name(dlq), message_id=ids[12])

    assert done == Redrive(moved=1, kept=0, remaining=14)
    assert [m["Body"] for m in _drain(_url_of_source(dlq))] == [json.dumps({"n": 12})]
    # The 14 others were held while it was looked for, then released: visible at once
    assert sorted(m["MessageId"] for m in _drain(dlq)) == sorted(ids[:12] + ids[13:])


def test_a_message_id_not_in_the_queue_moves_nothing(dead_letters: SqsDeadLetters) -> None:
    dlq = _url(dead_letters, "WalletQueueDlq")
    ids = _plant(dlq, "a", "b")

    assert dead_letters.redrive(_name(dlq), message_id="no-such-message") == Redrive(moved=0, kept=0, remaining=2)

    assert _drain(_url_of_source(dlq)) == []
    assert sorted(m["MessageId"] for m in _drain(dlq)) == sorted(ids)


def test_a_queue_that_is_not_one_of_the_stacks_dead_letter_queues_is_refused(dead_letters: SqsDeadLetters) -> None:
    source = _url_of_source(_url(dead_letters, "WalletQueueDlq"))
    _plant(source, "work")

    with pytest.raises(RedriveRefused, match="is not one of this stack's dead-letter queues"):
        dead_letters.redrive(_name(source))

    assert [m["Body"] for m in _drain(source)] == ["work"]


def test_a_dead_letter_queue_with_no_single_source_is_refused_and_keeps_its_messages(
    dead_letters: SqsDeadLetters,
) -> None:
    orphan = boto3.client("sqs").create_queue(QueueName="OrphanDlq")["QueueUrl"]
    _plant(orphan, "kept")
    with_orphan = SqsDeadLetters([*dead_letters.queue_urls, orphan])

    with pytest.raises(RedriveRefused, match="is the dead-letter queue of 0 queues"):
        with_orphan.redrive("OrphanDlq")

    assert [m["Body"] for m in _drain(orphan)] == ["kept"]


def test_a_message_that_answers_a_saga_is_kept_and_the_rest_are_moved(dead_letters: SqsDeadLetters) -> None:
    dlq = _url(dead_letters, "PayoutQueueDlq")
    (token_id,) = _plant(dlq, json.dumps({"payout_id": "po_1", "task_token": "AQB-token"}))
    _plant(dlq, json.dumps({"payout_id": "po_2", "kind": "confirm"}))

    done = dead_letters.redrive(_name(dlq))

    assert done == Redrive(moved=1, kept=1, remaining=1)
    assert [m["Body"] for m in _drain(_url_of_source(dlq))] == [json.dumps({"payout_id": "po_2", "kind": "confirm"})]
    assert [m["MessageId"] for m in _drain(dlq)] == [token_id]


def test_the_listing_redacts_tokens_shows_the_reason_and_counts_its_own_reads(dead_letters: SqsDeadLetters) -> None:
    dlq = _url(dead_letters, "ExecutorQueueDlq")
    body = {"payment_order_id": "po_1", "payment_method": "tok_visa", "steps": [{"task_token": "AQB-token"}]}
    _plant(dlq, json.dumps(body), reason="too old")

    (first,) = dead_letters.queue(_name(dlq), peek=5).oldest
    (second,) = dead_letters.queue(_name(dlq), peek=5).oldest

    assert first.body == {
        "payment_order_id": "po_1",
        "payment_method": "[redacted]",
        "steps": [{"task_token": "[redacted]"}],
    }
    assert first.attributes == {"trace": "t-1", "dead_letter_reason": "too old"}
    assert (first.receive_count, second.receive_count) == (1, 2)
