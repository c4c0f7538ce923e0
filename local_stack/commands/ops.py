"""`payments ops`: the on-call engineer's tools, against the running local stack or, with `--aws`, the
deployed stack (the caller's own AWS credentials).

  payments ops dead-letters [--peek N]          every dead-letter queue: messages held, source queue, and
                                                the N oldest messages with their bodies decoded (JSON)
  payments ops redrive QUEUE [--message-id ID]  send a dead-letter queue's messages (or one) back to the
                                                queue they came from; every consumer is idempotent. Exit
                                                status 1 unless all of them (or that one) went back

The queues are the stack's own (the money auditor's list of dead-letter queues); nothing else is touched."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from functions.auditor.settings import AuditorSettings
from functions.ops.dead_letters import RedriveRefused, SqsDeadLetters
from local_stack.commands.audit import HANDLER as AUDITOR_HANDLER
from local_stack.commands.environments import deployed_environment, local_environment
from local_stack.stack import STACK_NAME, STATE_FILE


def register(commands: Any) -> None:
    ops = commands.add_parser("ops", help="operator tools: dead letters and their redrive")
    actions = ops.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("dead-letters", help="every dead-letter queue, its depth and oldest messages")
    listing.add_argument("--peek", type=int, default=3, help="show this many of each queue's oldest messages")
    listing.set_defaults(run=list_dead_letters)
    redrive = actions.add_parser("redrive", help="send a dead-letter queue's messages back to their source")
    redrive.add_argument("queue", help="the dead-letter queue's name, as `payments ops dead-letters` shows it")
    redrive.add_argument("--message-id", help="only this message")
    redrive.set_defaults(run=redrive_queue)
    for action in (listing, redrive):
        action.add_argument("--aws", action="store_true", help="the deployed stack, with your AWS credentials")
        action.add_argument("--stack", default=STACK_NAME, help="the deployed stack's name (with --aws)")
        action.add_argument("--state-file", type=Path, default=STATE_FILE, help="the running local stack's state")


def _dead_letters(args: argparse.Namespace) -> SqsDeadLetters:
    environment = (
        deployed_environment(args.stack, AUDITOR_HANDLER)
        if args.aws
        else local_environment(args.state_file, AUDITOR_HANDLER)
    )
    # The adapter finds the endpoint (locally, the local cloud's and its credentials) in the environment.
    os.environ.update(environment)
    return SqsDeadLetters(AuditorSettings.from_env(environment).queue_urls)


def list_dead_letters(args: argparse.Namespace) -> int:
    if args.peek < 0:
        raise SystemExit("--peek must be 0 or more")
    queues = _dead_letters(args).queues(peek=args.peek)
    print(json.dumps({"dead_letter_queues": [queue.as_json() for queue in queues]}, indent=2))
    return 0


def redrive_queue(args: argparse.Namespace) -> int:
    """Exit status 0 when the message (or, for a whole queue, every message) went back to its source."""
    try:
        done = _dead_letters(args).redrive(args.queue, message_id=args.message_id)
    except RedriveRefused as refused:
        print(json.dumps({"error": str(refused)}))
        return 1
    result: dict[str, Any] = {"queue": args.queue, "moved": done.moved, "kept": done.kept, "remaining": done.remaining}
    if done.kept:
        result["note"] = f"{done.kept} kept: they answer a saga's task token; resolve them through the saga"
    if args.message_id is not None and done.moved + done.kept == 0:
        result["error"] = f"no message {args.message_id} is visible in {args.queue}"
    print(json.dumps(result))
    return 0 if (done.moved == 1 if args.message_id is not None else done.remaining == 0) else 1
