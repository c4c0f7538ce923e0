"""`payments ops dead-letters` and `payments ops redrive` through the local stack, as processes: a stage of
the pay-in path that dies on every delivery sends the order's message to its dead-letter queue, where the
payment stops; the listing shows it, decoded; a redrive of that one message completes the payment exactly
once; and a duplicate of it redriven later changes nothing (every consumer is idempotent).

The order status queue is left out: one order sends it several messages, so a count of crashes does not
dead-letter any one of them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.constructs.queue import MAX_RECEIVE_COUNT
from local_stack.stack import LocalStack
from tests.e2e.test_chaos import function_id
from tests.e2e.test_pay_in import charges_for, payable_balance, wallet_available
from tests.support.api import ApiClient, checkout, unique


def _ops(state_file: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "local_stack.cli", "ops", *args, "--state-file", str(state_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)


def _eventually(check: Callable[[], Any], *, timeout: float = 120, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(1)
    return found


@pytest.fixture
def state_file(stack: LocalStack, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"aws_endpoint": stack.aws_endpoint, "environments": stack.environments}))
    try:
        yield path
    finally:
        stack.chaos.reset()


def _dead_letter_of(state_file: Path, queue: str, payment_order_id: str) -> dict[str, Any] | None:
    """The listing's entry of the message about `payment_order_id` in `queue`, once it is there."""
    status, listing = _ops(state_file, "dead-letters", "--peek", "100")
    assert status == 0, listing
    (found,) = [q for q in listing["dead_letter_queues"] if queue in q["name"]]
    letter = next((m for m in found["oldest"] if payment_order_id in json.dumps(m["body"])), None)
    if letter is None:
        return None
    return {**letter, "queue": found["name"], "source_queues": found["source_queues"], "held": found["messages"]}


def _queue_empty(aws: Any, url: str) -> bool:
    attributes = aws("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(v) for v in attributes.values()) == 0


@pytest.mark.parametrize(
    ("handler", "queue"),
    [
        ("functions.wallet.handler.handler", "PayInWalletQueueDlq"),
        ("functions.ledger.handler.handler", "PayInLedgerQueueDlq"),
    ],
)
def test_a_dead_lettered_order_is_listed_then_redriven_to_completion_once(
    stack: LocalStack, api: ApiClient, psp: ApiClient, aws: Any, state_file: Path, handler: str, queue: str
) -> None:
    # Given a stage of the pay-in path that dies on every delivery, until its message is dead-lettered
    stack.chaos.crash_next(function_id(stack, handler), times=MAX_RECEIVE_COUNT)
    seller = unique("seller")
    body = checkout((seller, 1500))
    order_id = body["orders"][0]["payment_order_id"]
    accepted = api.post("/v1/payments", body)
    assert accepted.status == 202, accepted.body

    # When the on-call engineer lists the dead letters, then the order's message is there, decoded
    letter = _eventually(lambda: _dead_letter_of(state_file, queue, order_id), what=f"{order_id} in {queue}")
    assert stack.chaos.pending_crashes(function_id(stack, handler)) == 0
    assert letter["receive_count"] >= MAX_RECEIVE_COUNT
    (source,) = letter["source_queues"]
    assert queue.removesuffix("Dlq") in source and "Dlq" not in source
    # And the payment is stuck short of that stage
    payment = api.get(f"/v1/payments/{accepted.body['payment_id']}").body
    (order,) = payment["orders"]
    stuck = {
        "PayInWalletQueueDlq": (order["wallet_updated"], wallet_available(api, seller)),
        "PayInLedgerQueueDlq": (order["ledger_updated"], payable_balance(api, seller)),
    }
    assert stuck[queue] == (False, 0), payment

    # When that one message is redriven
    status, result = _ops(state_file, "redrive", letter["queue"], "--message-id", letter["message_id"])
    assert (status, result) == (0, {"queue": letter["queue"], "moved": 1, "kept": 0, "remaining": letter["held"] - 1})

    # Then the payment completes, and the seller is credited and booked once
    def complete() -> dict[str, Any] | None:
        found = api.get(f"/v1/payments/{accepted.body['payment_id']}").body
        (done,) = found["orders"]
        return found if found["status"] == "SUCCEEDED" and done["wallet_updated"] and done["ledger_updated"] else None

    _eventually(complete, what="the payment completed")
    assert (wallet_available(api, seller), payable_balance(api, seller)) == (1500, 1500)
    assert len(charges_for(psp, order_id)) == 1

    # When a duplicate of the message is dead-lettered and redriven as well
    dlq_url = aws("sqs").get_queue_url(QueueName=letter["queue"])["QueueUrl"]
    source_url = aws("sqs").get_queue_url(QueueName=source)["QueueUrl"]
    duplicate = aws("sqs").send_message(QueueUrl=dlq_url, MessageBody=json.dumps(letter["body"]))["MessageId"]
    status, result = _ops(state_file, "redrive", letter["queue"], "--message-id", duplicate)
    assert (status, result) == (0, {"queue": letter["queue"], "moved": 1, "kept": 0, "remaining": letter["held"] - 1})

    # Then once its queue has consumed it, nothing has moved twice
    _eventually(lambda: _queue_empty(aws, source_url), what=f"{source} consumed")
    assert (wallet_available(api, seller), payable_balance(api, seller)) == (1500, 1500)
    assert len(charges_for(psp, order_id)) == 1
    assert api.get("/v1/ledger/trial-balance").body["balanced"] is True


def test_a_redrive_of_a_queue_that_is_not_a_dead_letter_queue_is_refused(stack: LocalStack, state_file: Path) -> None:
    status, result = _ops(state_file, "redrive", "no-such-queue")
    assert (status, result) == (1, {"error": "no-such-queue is not one of this stack's dead-letter queues"})
