"""The money auditor (functions/auditor) run against the soak's own local stack, once it is quiet: its
findings join the soak's own checks through the public API, and count as violations.

It runs as `payments audit` in a child process, pointed at the soak stack's state file. The auditor's
adapters find the local cloud's endpoint and their table names in the process environment (as in the
Lambda); setting those in the soak's own process would leave the soak stack's endpoint behind for whatever
runs next in it (a test session's later fixtures, for one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from local_stack.soak.check import Finding
from local_stack.stack import ROOT

# A quiet stack's audit reads every order decided so far, a few reads each, and may pause before it reads
# a differing wallet again: a fixed allowance (the auditor's start and its pauses) plus one per order.
AUDIT_BASE_SECONDS = 300.0
AUDIT_SECONDS_PER_ORDER = 0.5


def audit_timeout(orders: int) -> float:
    return AUDIT_BASE_SECONDS + AUDIT_SECONDS_PER_ORDER * orders


def audit_command(state_file: Path, *, window_seconds: int) -> list[str]:
    """`payments audit` against the stack whose state file is `state_file`: every order decided in the
    last `window_seconds`, up to now (the stack is quiet: no order needs the usual 5-minute grace)."""
    return [
        sys.executable,
        "-m",
        "local_stack.cli",
        "audit",
        *("--state-file", str(state_file)),
        *("--window-seconds", str(window_seconds)),
        *("--settle-seconds", "0"),
    ]


def findings_from_report(report: dict[str, Any]) -> list[Finding]:
    """The auditor's findings (its JSON report) as the soak's: every one is a violation."""
    return [
        Finding(f"audit:{finding['check']}", tuple(f"{k}={v}" for k, v in finding["ids"].items()), finding["message"])
        for finding in report["findings"]
    ]


def auditor_findings(state_file: Path, *, window_seconds: int, timeout: float) -> list[Finding]:
    """Run the auditor once against the stack of `state_file`. An auditor that could not report (a crash,
    output that is not its report, no report within `timeout` seconds) is a violation too: the soak cannot
    say money is conserved, and the soak's other findings are still reported."""
    command = audit_command(state_file, window_seconds=window_seconds)
    try:
        result = subprocess.run(  # noqa: S603 - our interpreter, our CLI
            command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
        )
    except subprocess.TimeoutExpired as expired:
        stderr = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else expired.stderr
        detail = f"no report within {timeout:.0f} s (the auditor was stopped): {(stderr or '')[-2000:]}"
        return [Finding("audit", (str(state_file),), detail)]
    try:
        report = json.loads(result.stdout)
        findings = findings_from_report(report)
    except (ValueError, KeyError, TypeError) as error:
        detail = f"exit status {result.returncode}, unreadable report ({error}): {result.stderr[-2000:]}"
        return [Finding("audit", (str(state_file),), detail)]
    if (result.returncode == 1) != bool(findings) or result.returncode not in (0, 1):
        detail = f"exit status {result.returncode} with {len(findings)} findings: {result.stderr[-2000:]}"
        findings.append(Finding("audit", (str(state_file),), detail))
    return findings
