"""`payments audit`: the money auditor, once, printed as JSON; exit status 1 on any violation.

  payments audit            against the running local stack (its state file names the auditor's settings)
  payments audit --aws      against the deployed stack, with the caller's AWS credentials: the settings are
                            the deployed auditor function's own; every call is a read (GetItem, Query,
                            GetQueueAttributes, the PSP's charge look-up)

It runs functions/auditor's checks with the same adapters as the scheduled auditor Lambda."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import boto3

from functions.auditor.handler import build_ports, run_audit
from functions.auditor.settings import AuditorSettings
from local_stack.commands.settle import load_state
from local_stack.lambda_runtime import worker_base_env
from local_stack.stack import STACK_NAME, STATE_FILE

HANDLER = "functions.auditor.handler.handler"
AUDITOR_LOGICAL_ID_PREFIX = "AuditorFunction"


def register(commands: Any) -> None:
    audit = commands.add_parser("audit", help="the money auditor: JSON report, exit status 1 on any violation")
    audit.add_argument("--aws", action="store_true", help="audit the deployed stack with your AWS credentials")
    audit.add_argument("--stack", default=STACK_NAME, help="the deployed stack's name (with --aws)")
    audit.add_argument("--state-file", type=Path, default=STATE_FILE, help="the running local stack's state file")
    audit.add_argument("--window-seconds", type=int, help="orders decided in this window (default: 2 hours)")
    audit.add_argument("--settle-seconds", type=int, help="the window ends this long ago (default: 300)")
    audit.add_argument(
        "--processing-deadline-seconds", type=int, help="an order open longer is a violation (default: 4 hours)"
    )
    audit.add_argument("--recheck-pause-seconds", type=float, help="pause before re-reading a differing wallet")
    audit.set_defaults(run=run)


def deployed_environment(stack: str) -> dict[str, str]:
    """The deployed auditor function's environment (table names, queue URLs, the PSP's URL and key secret)."""
    pages = boto3.client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=stack)
    for page in pages:
        for resource in page["StackResourceSummaries"]:
            if resource["ResourceType"] == "AWS::Lambda::Function" and resource["LogicalResourceId"].startswith(
                AUDITOR_LOGICAL_ID_PREFIX
            ):
                configuration = boto3.client("lambda").get_function_configuration(
                    FunctionName=resource["PhysicalResourceId"]
                )
                variables: dict[str, str] = configuration["Environment"]["Variables"]
                return variables
    raise SystemExit(f"no auditor function in stack {stack}: is it deployed?")


def local_environment(state_file: Path) -> dict[str, str]:
    state = load_state(state_file)
    environments: dict[str, dict[str, str]] = state.get("environments", {})
    if HANDLER not in environments:
        raise SystemExit(f"{state_file} names no auditor: restart `payments local` with this version")
    return {**worker_base_env(state["aws_endpoint"]), **environments[HANDLER]}


def run(args: argparse.Namespace) -> int:
    environment = deployed_environment(args.stack) if args.aws else local_environment(args.state_file)
    overrides = {
        "AUDIT_WINDOW_SECONDS": args.window_seconds,
        "AUDIT_SETTLE_SECONDS": args.settle_seconds,
        "AUDIT_PROCESSING_DEADLINE_SECONDS": args.processing_deadline_seconds,
        "AUDIT_RECHECK_PAUSE_SECONDS": args.recheck_pause_seconds,
    }
    environment |= {name: str(value) for name, value in overrides.items() if value is not None}
    # The adapters find their endpoint and credentials in the environment, as in the Lambda.
    os.environ.update(environment)
    settings = AuditorSettings.from_env(environment)
    report = run_audit(settings, build_ports(settings))
    print(report.model_dump_json(indent=2))
    return 0 if report.ok else 1
