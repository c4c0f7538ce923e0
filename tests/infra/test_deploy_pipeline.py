"""The deployment pipeline: GitHub Actions runs `make test`, then deploys with the CDK CLI v2 through
an OIDC role (no stored AWS keys), dev from main and prod from a v* tag, and smoke-tests the result.
Its deploy step is `make deploy`, the same target (and so the same synthesis) as a deploy from a laptop;
every action is pinned by commit SHA."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import smoke_test

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    parsed: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True.
    parsed["on"] = parsed.pop(True, parsed.get("on"))
    return parsed


def _runs(job: dict[str, Any]) -> list[str]:
    return [" ".join(step["run"].split()) for step in job["steps"] if "run" in step]


def _uses(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["uses"].split("@")[0]: step.get("with", {}) for step in job["steps"] if "uses" in step}


def test_every_push_pull_request_and_tag_runs_make_test(workflow: dict[str, Any]) -> None:
    assert workflow["on"] == {"push": {"branches": ["main"], "tags": ["v*"]}, "pull_request": None}
    assert workflow["permissions"] == {"contents": "read"}
    test = workflow["jobs"]["test"]
    assert "if" not in test
    assert _runs(test) == ["make test"]


@pytest.mark.parametrize(
    ("job", "stage", "condition"),
    [
        ("deploy-dev", "dev", "github.event_name == 'push' && github.ref == 'refs/heads/main'"),
        ("deploy-prod", "prod", "github.event_name == 'push' && startsWith(github.ref, 'refs/tags/v')"),
    ],
)
def test_deploys_with_cdk_v2_through_an_oidc_role_then_smoke_tests(
    workflow: dict[str, Any], job: str, stage: str, condition: str
) -> None:
    deploy = workflow["jobs"][job]
    # Given it only runs after the tests pass, for its own ref, in its GitHub environment
    assert deploy["needs"] == "test"
    assert deploy["if"] == condition
    assert deploy["environment"] == stage
    assert deploy["concurrency"] == {"group": f"deploy-{stage}", "cancel-in-progress": False}
    # And it gets AWS credentials only through OIDC
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    credentials = _uses(deploy)["aws-actions/configure-aws-credentials"]
    assert credentials["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert not any("secret" in str(v).lower() or "access-key" in k for k, v in credentials.items())
    # When it runs: `make deploy` for the stage (install, synthesize the stage, deploy that assembly: see
    # test_make_deploy_synthesizes_the_stage_with_the_cdk_cli_then_deploys_that_assembly), then smoke-test
    runs = _runs(deploy)
    variables = (
        'PSP_BASE_URL="${{ vars.PSP_BASE_URL }}" PAYOUT_PROVIDER_URL="${{ vars.PAYOUT_PROVIDER_URL }}" '
        'ALARM_EMAIL="${{ vars.ALARM_EMAIL }}"'
    )
    assert runs[0] == f"make deploy STAGE={stage} {variables}"
    assert runs[1].startswith(".venv/bin/python scripts/smoke_test.py --outputs cdk-outputs.json")
    assert ("--checkout" in runs[1]) is (stage == "dev")
    assert len(runs) == 2


def _make_dry_run(*variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-n", "deploy", *variables],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_make_deploy_synthesizes_the_stage_with_the_cdk_cli_then_deploys_that_assembly() -> None:
    # When `make deploy` is asked what it would run for prod
    result = _make_dry_run(
        "STAGE=prod",
        "PSP_BASE_URL=https://api.psp.example/v1",
        "PAYOUT_PROVIDER_URL=https://api.payouts.example/v1",
        "ALARM_EMAIL=ops@example.com",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # Then the CDK CLI synthesizes prod (cdk-nag checked) for the credentials' account and region, and
    # deploys that very assembly
    synth = (
        "npx --yes aws-cdk@2 synth --quiet --context stage=prod --context pspBaseUrl='https://api.psp.example/v1' "
        "--context payoutProviderUrl='https://api.payouts.example/v1' --context alarmEmail='ops@example.com'"
    )
    deploy = (
        "npx --yes aws-cdk@2 deploy Payments --app cdk.out --require-approval never --outputs-file cdk-outputs.json"
    )
    assert lines[-2:] == [synth, deploy]


def test_make_deploy_refuses_to_deploy_without_the_psps_url() -> None:
    result = _make_dry_run("STAGE=prod")
    assert result.returncode != 0
    assert "PSP_BASE_URL is required" in result.stderr
    assert "aws-cdk@2" not in result.stdout


def test_make_deploy_refuses_to_deploy_without_the_payout_providers_url() -> None:
    result = _make_dry_run("STAGE=prod", "PSP_BASE_URL=https://api.psp.example/v1")
    assert result.returncode != 0
    assert "PAYOUT_PROVIDER_URL is required" in result.stderr
    assert "aws-cdk@2" not in result.stdout


def test_every_action_is_pinned_by_commit_sha_with_its_version() -> None:
    uses = [line.strip() for line in WORKFLOW.read_text().splitlines() if line.strip().startswith("- uses:")]
    assert len(uses) == 11
    for line in uses:
        assert re.fullmatch(r"- uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line), line


def test_the_cdk_cli_runs_on_node_22_and_is_pinned(workflow: dict[str, Any]) -> None:
    assert workflow["env"]["NODE_VERSION"] == "22"
    for job in workflow["jobs"].values():
        (node,) = [step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-node@")]
        assert node["with"]["node-version"] == "${{ env.NODE_VERSION }}"
    # `npx aws-cdk@2` runs the CLI that package-lock.json pins (make cdk-cli installs it)
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/aws-cdk"]["version"]
    assert json.loads((ROOT / "package.json").read_text())["devDependencies"] == {"aws-cdk": pinned}
    assert re.fullmatch(r"2\.\d+\.\d+", pinned)


def test_the_smoke_test_reads_the_stack_outputs(tmp_path: Path) -> None:
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text('{"Payments": {"ApiUrl": "https://abc.execute-api/dev/", "ApiKeyId": "k1", "X": "y"}}')
    assert smoke_test.read_outputs(outputs) == ("https://abc.execute-api/dev/", "k1")


def test_the_smoke_test_fails_when_the_api_does_not_answer() -> None:
    # Given no API on this port (loopback only)
    assert smoke_test.main(["--api-url", "http://127.0.0.1:9", "--api-key", "k", "--timeout", "0"]) == 1
