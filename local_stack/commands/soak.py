"""`payments soak --checkouts N --seed S [--faults all|none|<kinds>]`: seeded load under faults.

Starts its own local stack (the faults live in its Lambda runtime, event-source pollers and PSP
simulator) on free loopback ports, drives N multi-seller checkouts through the public API with the
seed's fault plan armed, waits until the system is quiet, checks that money is conserved, and prints:

  soak: N checkouts, X orders, F faults injected, V violations, T s

Exit status 1 on any violation (they are listed on stderr, and in --report as JSON). The functions' logs
go to --log, the local stack's own to the same name with .stack.log."""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stack.faults import KINDS, FaultPlan, parse_kinds
from local_stack.soak.audit import audit_timeout, auditor_findings
from local_stack.soak.check import Finding, soak_findings
from local_stack.soak.driver import drive_checkouts, wait_until_quiet
from local_stack.soak.http import SoakHttp
from local_stack.soak.workload import build_workload
from local_stack.stack import DEFAULT_TEMPLATE, ROOT, LocalStack, LocalStackConfig

DEFAULT_LOG = ROOT / ".local" / "soak.log"


def register(commands: Any) -> None:
    soak = commands.add_parser("soak", help="seeded load under faults against its own local stack")
    soak.add_argument("--checkouts", type=int, required=True, help="how many checkouts to drive")
    soak.add_argument("--seed", type=int, required=True, help="the seed of the workload and the fault plan")
    soak.add_argument(
        "--faults", default="all", help=f"all, none or a comma-separated list of: {', '.join(KINDS)} (default all)"
    )
    soak.add_argument("--concurrency", type=int, default=4, help="checkouts in flight at once (default 4)")
    soak.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the system to go quiet")

    soak.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="the synthesized template")
    soak.add_argument("--log", type=Path, default=DEFAULT_LOG, help="where the local stack's logs go")
    soak.add_argument("--report", type=Path, help="write the faults injected and every finding here as JSON")
    soak.set_defaults(run=run)


@dataclass
class SoakResult:
    checkouts: int
    orders: int
    faults: dict[str, int]
    findings: list[Finding]
    seconds: float
    sweeps: int = 0
    payouts: int = 0
    phases: dict[str, float] = field(default_factory=dict)  # seconds each phase took, in order

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.violation]

    def line(self) -> str:
        return (
            f"soak: {self.checkouts} checkouts, {self.orders} orders, {sum(self.faults.values())} faults injected, "
            f"{len(self.violations)} violations, {self.seconds:.0f} s"
        )

    def report(self) -> dict[str, Any]:
        return {
            "checkouts": self.checkouts,
            "orders": self.orders,
            "faults": dict(sorted(self.faults.items())),
            "violations": [str(f) for f in self.violations],
            "orphan_charges": [str(f) for f in self.findings if not f.violation],
            "recovery_sweeps": self.sweeps,
            "payouts": self.payouts,
            "seconds": round(self.seconds, 1),
            "phase_seconds": {phase: round(seconds, 1) for phase, seconds in self.phases.items()},
        }


class PhaseClock:
    """How long each phase of the soak took (driving, waiting for quiet, checking, auditing)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._since = time.monotonic()

    def done(self, phase: str) -> None:
        now = time.monotonic()
        self.seconds[phase] = now - self._since
        self._since = now


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def soak(
    *,
    checkouts: int,
    seed: int,
    kinds: frozenset[str],
    template: Path,
    log_path: Path,
    concurrency: int,
    timeout: float,
) -> SoakResult:
    plan = FaultPlan(seed, kinds)
    # `payments audit` finds the soak's stack through its state file, as it finds `payments local`'s.
    state_file = log_path.with_suffix(".state.json")
    config = LocalStackConfig(
        port=_free_port(),
        psp_port=_free_port(),
        aws_port=_free_port(),
        api_key=secrets.token_urlsafe(24),
        template=template,
        faults=plan,
        state_file=state_file,
        # A big soak's backlog can outlast the local stack's 15-minute message age: its messages are kept
        # (and the recovery sweeps wait) as long as it waits for quiet.
        message_age_seconds=max(LocalStackConfig.message_age_seconds, int(timeout)),
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        stack = LocalStack(config, log_stream=log)
        stack_started = time.monotonic()
        stack.start()
        try:
            started = time.monotonic()
            http = SoakHttp(
                api_url=stack.api_url,
                api_key=config.api_key,
                psp_url=stack.psp_url,
                psp_api_key=config.psp_api_key,
                provider_url=config.payout_provider_url or stack.psp_url,
                provider_api_key=config.payout_provider_api_key,
                pool_size=concurrency * 2,
            )
            workload = build_workload(seed, checkouts, tag=uuid.uuid4().hex[:6])
            phases = PhaseClock()
            drive = drive_checkouts(stack, http, workload, plan, concurrency=concurrency)
            phases.done("drive")
            findings = []
            still_busy = wait_until_quiet(stack, http, drive, timeout=timeout)
            if still_busy:
                findings.append(Finding("quiet", tuple(still_busy), f"not quiet within {timeout:.0f} s"))
            phases.done("quiet")
            findings += soak_findings(http, drive, concurrency=concurrency)
            phases.done("check")
            # Every order the stack decided since it started (and a minute more: the window is whole seconds).
            audit_window = int(time.monotonic() - stack_started) + 60
            findings += auditor_findings(
                state_file, window_seconds=audit_window, timeout=audit_timeout(workload.order_count)
            )
            phases.done("audit")
            return SoakResult(
                checkouts=len(workload.checkouts),
                orders=workload.order_count,
                faults=dict(plan.injected),
                findings=findings,
                seconds=time.monotonic() - started,
                sweeps=drive.sweeps,
                payouts=len(drive.payouts),
                phases=phases.seconds,
            )
        finally:
            stack.stop()


@contextmanager
def _stack_logs_to(path: Path) -> Iterator[None]:
    """The stack's own log lines (failed batches, retried polls: the faults at work) go to a file while
    the soak runs, so that the command's output is its one line."""
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    stack_logger = logging.getLogger("local_stack")
    stack_logger.addHandler(handler)
    stack_logger.propagate = False
    try:
        yield
    finally:
        stack_logger.propagate = True
        stack_logger.removeHandler(handler)
        handler.close()


def run(args: argparse.Namespace) -> int:
    try:
        kinds = parse_kinds(args.faults)
    except ValueError as error:
        print(f"payments soak: {error}", file=sys.stderr)
        return 2
    if args.checkouts < 1:
        print("payments soak: --checkouts must be at least 1", file=sys.stderr)
        return 2
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with _stack_logs_to(args.log.with_suffix(".stack.log")):
        result = soak(
            checkouts=args.checkouts,
            seed=args.seed,
            kinds=kinds,
            template=args.template,
            log_path=args.log,
            concurrency=args.concurrency,
            timeout=args.timeout,
        )
    if args.report is not None:
        args.report.write_text(json.dumps(result.report(), indent=2) + "\n")
    for finding in result.violations:
        print(finding, file=sys.stderr)
    print(result.line(), flush=True)
    return 1 if result.violations else 0
