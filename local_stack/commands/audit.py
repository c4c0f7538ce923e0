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

from functions.auditor.handler import build_ports, run_audit
from functions.auditor.settings import AuditorSettings
from local_stack.commands.environments import deployed_environment, local_environment
from local_stack.stack import STACK_NAME, STATE_FILE

HANDLER = "functions.auditor.handler.handler"


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


def run(args: argparse.Namespace) -> int:
    environment = deployed_environment(args.stack, HANDLER) if args.aws else local_environment(args.state_file, HANDLER)
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
