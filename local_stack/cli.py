"""`payments`: the local stack and tools around it."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from local_stack.stack import DEFAULT_TEMPLATE, ROOT, LocalStack, LocalStackConfig

STATE_FILE = ROOT / ".local" / "stack.json"


def synth(outdir: Path) -> Path:
    from infra.app import STACK_NAME, build_app

    app, _ = build_app(str(outdir))
    app.synth()
    return outdir / f"{STACK_NAME}.template.json"


def run_local(args: argparse.Namespace) -> int:
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
        f"  PSP:      {stack.psp_url}\n"
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


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="payments", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser("local", help="run the local stack until Ctrl-C")
    local.add_argument("--port", type=int, help="API port (env PAYMENTS_PORT, default 3000)")
    local.add_argument("--psp-port", type=int, help="PSP simulator port (env PAYMENTS_PSP_PORT, default 3001)")
    local.add_argument("--aws-port", type=int, help="moto port (env PAYMENTS_AWS_PORT, default 4566)")
    local.add_argument("--template", default=str(DEFAULT_TEMPLATE), help="synthesized template to run")
    local.add_argument("--state-file", default=str(STATE_FILE), help="where to write the running stack's facts")
    synth_cmd = commands.add_parser("synth", help="synthesize the CDK app (cdk-nag checked) into cdk.out")
    synth_cmd.add_argument("--outdir", default=str(DEFAULT_TEMPLATE.parent))
    args = parser.parse_args(argv)
    if args.command == "local":
        return run_local(args)
    if args.command == "synth":
        print(synth(Path(args.outdir)))
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
