"""Checkov, the second security judge, on the template CI deploys (the CDK CLI's, per stage): no failed
check. What does not apply to a resource is acknowledged on that resource, with the check and the reason,
in its template metadata (infra/nag.py `acknowledge_checkov`): no skip list anywhere else."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Synthesized
from tests.infra.conftest import ROOT, SYNTH_TIMEOUT_SECONDS, CliSynth

CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
# The checks the stack acknowledges anywhere; a new kind of acknowledgement is a review decision.
ACKNOWLEDGED_CHECKS = {
    "CKV_AWS_115": "function-level concurrency limit",
    "CKV_AWS_116": "Lambda dead-letter queue",
    "CKV_AWS_117": "Lambda inside a VPC",
    "CKV_AWS_59": "API method without authorization",
    "CKV_AWS_120": "API Gateway caching",
    "CKV_AWS_18": "S3 access logging",
}


def start_checkov(template: Path) -> subprocess.Popen[str]:
    """Checkov 3 on one CloudFormation template, offline: no Prisma Cloud download, no version check."""
    return subprocess.Popen(
        [str(CHECKOV), "-f", str(template), "--framework", "cloudformation", "--skip-download", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"},
    )


def checkov_report(scan: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = scan.communicate(timeout=600)
    assert stdout.lstrip().startswith("{"), stdout[-2000:] + stderr[-2000:]
    report: dict[str, Any] = json.loads(stdout)
    report["exit_code"] = scan.returncode
    return report


@pytest.mark.infra
@pytest.mark.timeout(SYNTH_TIMEOUT_SECONDS + 600)
def test_checkov_fails_no_check_on_either_stages_deployed_template(
    cli_synths: dict[tuple[str, str], CliSynth],
) -> None:
    # Given each stage's template as the CDK CLI synthesizes it for a deployment
    templates = {stage: cli_synths[(stage, "eu-west-1")] for stage in ("dev", "prod")}
    for run in templates.values():
        assert run.returncode == 0, run.output[-4000:]
    # When Checkov scans them, once per stage (both at once)
    scans = {stage: start_checkov(run.synthesized().template_path) for stage, run in templates.items()}
    for stage, scan in scans.items():
        report = checkov_report(scan)
        # Then nothing fails and the template parses
        summary = report["summary"]
        assert (summary["failed"], summary["parsing_errors"], report["exit_code"]) == (0, 0, 0), (
            stage,
            report["results"].get("failed_checks"),
        )
        assert summary["passed"] >= 500, stage
        # And every skip is one of the reviewed kinds, on one resource, with its reason
        skipped = report["results"]["skipped_checks"]
        functions = templates[stage].synthesized().resources("AWS::Lambda::Function")
        assert sum(1 for s in skipped if s["check_id"] == "CKV_AWS_117") == len(functions), stage
        for skip in skipped:
            assert skip["check_id"] in ACKNOWLEDGED_CHECKS, (stage, skip["check_id"])
            reason = skip["check_result"]["suppress_comment"]
            assert len(reason) >= 60 and reason.endswith("."), (stage, skip["resource"], skip["check_id"], reason)


def test_every_checkov_skip_is_on_a_resource_with_its_reason(synthesized: Synthesized) -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in synthesized.template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert set(skip) == {"id", "comment"}, logical_id
        assert skip["id"] in ACKNOWLEDGED_CHECKS, (logical_id, skip["id"])
        assert len(skip["comment"]) >= 60 and skip["comment"].endswith("."), (logical_id, skip)
    # No check is skipped twice on one resource, and there is no skip list outside the template
    assert len({(logical_id, skip["id"]) for logical_id, skip in skips}) == len(skips)
    assert not [p.name for p in ROOT.glob(".checkov*")]


def test_functions_are_acknowledged_by_how_they_are_invoked(synthesized: Synthesized) -> None:
    def skipped(resource: dict[str, Any]) -> set[str]:
        return {s["id"] for s in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])}

    for logical_id, function in synthesized.resources("AWS::Lambda::Function").items():
        props = function["Properties"]
        checks = skipped(function)
        # A DLQ is acknowledged only where the function is never invoked asynchronously: those have one
        assert ("CKV_AWS_116" in checks) is ("DeadLetterConfig" not in props), logical_id
        # A concurrency limit is acknowledged only where the function reserves none
        assert ("CKV_AWS_115" in checks) is ("ReservedConcurrentExecutions" not in props), logical_id
        assert "CKV_AWS_117" in checks, logical_id
        assert "CKV_AWS_173" not in checks, logical_id  # fixed: the Data key encrypts every environment
