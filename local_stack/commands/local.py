"""`payments local`: run the local stack until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from local_stack.commands.synth import synth
from local_stack.psp.simulator import DEFAULT_API_KEY
from local_stack.stack import DEFAULT_TEMPLATE, STATE_FILE, LocalStack, LocalStackConfig


def register(commands: Any) -> None:
    local = commands.add_parser("local", help="run the local stack until Ctrl-C")
    local.add_argument("--port", type=int, help="API port (env PAYMENTS_PORT, default 3000)")
    local.add_argument("--psp-port", type=int, help="PSP simulator port (env PAYMENTS_PSP_PORT, default 3001)")
    local.add_argument("--aws-port", type=int, help="moto port (env PAYMENTS_AWS_PORT, default 4566)")
    local.add_argument("--template", default=str(DEFAULT_TEMPLATE), help="synthesized template to run")
    local.add_argument("--state-file", default=str(STATE_FILE), help="where to write the running stack's facts")
    local.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = LocalStackConfig.from_env(
        port=args.port,
        psp_port=args.psp_port,
        aws_port=args.aws_port,
        template=Path(args.template),
        state_file=Path(args.state_file),
    )
    if not config.template.exists():
        print(f"synthesizing the CDK app into {config.template.parent} ...", flush=True)
        synth(config.template.parent)
    stopping = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    started = time.monotonic()
    stack = LocalStack(config)
    stack.start()
    print(
        f"payments local stack ready in {time.monotonic() - started:.1f}s\n"
        f"  API:      {stack.api_url}\n"
        f"  API key:  {config.api_key}\n"
        f"  PSP:      {stack.psp_url} (Authorization: Bearer $PAYMENTS_PSP_API_KEY, default {DEFAULT_API_KEY})\n"
        f"  AWS:      {stack.aws_endpoint} (moto)\n"
        f"Ctrl-C to stop.",
        flush=True,
    )
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        print("stopping ...", flush=True)
        stack.stop()
        print("stopped.", flush=True)
    return 0
