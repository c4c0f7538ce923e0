"""The deployment pipeline: GitHub Actions runs `make test`, then deploys with the CDK CLI v2 through
an OIDC role (no stored AWS keys), dev from main and prod from a v* tag, and smoke-tests the result."""

from __future__ import annotations

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
    # When it runs: install, synthesize the stage, deploy that assembly, smoke-test the outputs
    runs = _runs(deploy)
    assert runs[0] == "make install lambda-deps"
    assert runs[1].startswith(f"npx --yes aws-cdk@2 synth --quiet --context stage={stage} ")
    assert runs[2] == (
        "npx --yes aws-cdk@2 deploy Payments --app cdk.out --require-approval never --outputs-file cdk-outputs.json"
    )
    assert runs[3].startswith(".venv/bin/python scripts/smoke_test.py --outputs cdk-outputs.json")
    assert ("--checkout" in runs[3]) is (stage == "dev")


def test_the_smoke_test_reads_the_stack_outputs(tmp_path: Path) -> None:
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text('{"Payments": {"ApiUrl": "https://abc.execute-api/dev/", "ApiKeyId": "k1", "X": "y"}}')
    assert smoke_test.read_outputs(outputs) == ("https://abc.execute-api/dev/", "k1")


def test_the_smoke_test_fails_when_the_api_does_not_answer() -> None:
    # Given no API on this port (loopback only)
    assert smoke_test.main(["--api-url", "http://127.0.0.1:9", "--api-key", "k", "--timeout", "0"]) == 1
