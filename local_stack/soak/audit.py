"""The money auditor (functions/auditor) run against the soak's own local stack, once it is quiet: its
findings join the soak's own checks through the public API."""

from __future__ import annotations

import os

from functions.auditor.handler import build_ports, run_audit
from functions.auditor.settings import AuditorSettings
from local_stack.lambda_runtime import worker_base_env
from local_stack.soak.check import Finding
from local_stack.stack import LocalStack

AUDITOR_HANDLER = "functions.auditor.handler.handler"


def auditor_findings(stack: LocalStack) -> list[Finding]:
    environment = {
        **worker_base_env(stack.aws_endpoint),
        **stack.environments[AUDITOR_HANDLER],
        # The stack is quiet: every order decided so far is settled, none needs the usual 5-minute grace.
        "AUDIT_SETTLE_SECONDS": "0",
    }
    os.environ.update(environment)  # the adapters find the local cloud's endpoint there, as in the Lambda
    settings = AuditorSettings.from_env(environment)
    report = run_audit(settings, build_ports(settings))
    return [
        Finding(f"audit:{finding.check}", tuple(f"{k}={v}" for k, v in finding.ids.items()), finding.message)
        for finding in report.findings
    ]
