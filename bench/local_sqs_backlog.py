"""The local cloud's SQS under a backlog: the CPU time of a send and of a 10-message receive into a queue
already holding N messages, with moto as it is and with the local stack's fix (local_stack/moto_sqs.py),
measured in one run so the machine's load hits both alike.

    .venv/bin/python -m bench.local_sqs_backlog [--backlogs 100,1000,2000] [--rounds 20]

Not a test (make test does not run it). moto runs in-process (mock_aws); a receive leaves the messages
visible (VisibilityTimeout=0), so the backlog stays the same size while it is measured. moto's cost grows
with the backlog; the fix's should not, beyond the one pass a receive makes to list the visible messages."""

from __future__ import annotations

import argparse
import time
from typing import Any

import boto3
from moto import mock_aws

from local_stack.moto_sqs import skip_message_counts_on_sends_and_receives


def _per_call_ms(sqs: Any, backlog: int, rounds: int) -> tuple[float, float]:
    url = sqs.create_queue(QueueName=f"backlog-{backlog}-{time.monotonic_ns()}")["QueueUrl"]
    for start in range(0, backlog, 10):
        entries = [{"Id": str(n), "MessageBody": str(start + n)} for n in range(min(10, backlog - start))]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    started = time.process_time()
    for number in range(rounds):
        sqs.send_message(QueueUrl=url, MessageBody=f"more {number}")
    send = (time.process_time() - started) / rounds
    started = time.process_time()
    for _ in range(rounds):
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    receive = (time.process_time() - started) / rounds
    return send * 1000, receive * 1000


def _measure(backlogs: list[int], rounds: int) -> dict[int, tuple[float, float]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        return {backlog: _per_call_ms(sqs, backlog, rounds) for backlog in backlogs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlogs", default="100,1000,2000", help="queue depths to measure at")
    parser.add_argument("--rounds", type=int, default=20, help="sends and receives timed at each depth")
    args = parser.parse_args()
    backlogs = [int(value) for value in args.backlogs.split(",")]
    plain = _measure(backlogs, args.rounds)  # before the fix: it cannot be undone within a process
    skip_message_counts_on_sends_and_receives()
    fixed = _measure(backlogs, args.rounds)
    print("backlog  send ms (moto / fixed)   receive-10 ms (moto / fixed)")
    for backlog in backlogs:
        (plain_send, plain_receive), (fixed_send, fixed_receive) = plain[backlog], fixed[backlog]
        print(
            f"{backlog:7d}  {plain_send:7.2f} / {fixed_send:5.2f} ({plain_send / fixed_send:5.1f}x)"
            f"   {plain_receive:8.2f} / {fixed_receive:6.2f} ({plain_receive / fixed_receive:5.1f}x)"
        )


if __name__ == "__main__":
    main()
