"""Synthesis as CI deploys: the CDK CLI v2 through cdk.json, with a concrete account and region
(`CDK_DEFAULT_ACCOUNT=111111111111 CDK_DEFAULT_REGION=eu-west-1 npx -y aws-cdk@2 synth -q -c stage=prod`),
for both stages and in two regions. cdk-nag runs inside synthesis (a finding fails it) and cfn-lint
checks each template: both report nothing, whatever the region and account render as."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.config import StageConfig
from local_stack.template import ACCOUNT_ID, REGION
from tests.conftest import Synthesized
from tests.infra.conftest import ACCOUNT, CLI_SYNTHS, ROOT, SYNTH_TIMEOUT_SECONDS, CliSynth
from tests.infra.template_facts import by_base_name

pytestmark = [pytest.mark.infra, pytest.mark.timeout(SYNTH_TIMEOUT_SECONDS + 120)]


@pytest.mark.parametrize(("stage", "region"), CLI_SYNTHS)
def test_the_cdk_cli_synthesizes_the_stage_in_the_region_with_no_cdk_nag_finding(
    cli_synths: dict[tuple[str, str], CliSynth], stage: str, region: str
) -> None:
    run = cli_synths[(stage, region)]
    # Then the command exits 0: cdk-nag (a validation plugin) found nothing unacknowledged
    assert run.returncode == 0, run.output[-4000:]
    assert "AwsSolutions-" not in run.output
    report = json.loads((run.outdir / "validation-report.json").read_text())
    assert report["pluginReports"] == []
    template = run.synthesized().template
    # And the template is this stage's, for this account and region, concrete (no Ref AWS::Region there)
    (_, executor_queue_mapping) = next(
        (logical_id, m)
        for logical_id, m in template["Resources"].items()
        if m["Type"] == "AWS::Lambda::EventSourceMapping" and logical_id.startswith("PayInExecutor")
    )
    assert executor_queue_mapping["Properties"]["ScalingConfig"] == {
        "MaximumConcurrency": StageConfig.for_stage(stage).executor_concurrency
    }
    (_, logs_key) = by_base_name(template, "AWS::KMS::Key")["EncryptionLogsKey"]
    (logs_statement,) = [s for s in logs_key["Properties"]["KeyPolicy"]["Statement"] if "Service" in s["Principal"]]
    assert logs_statement["Principal"]["Service"] == f"logs.{region}.amazonaws.com"
    (_, map_policy) = next(
        found for name, found in by_base_name(template, "AWS::IAM::Policy").items() if "DistributedMapPolicy" in name
    )
    text = json.dumps(map_policy["Properties"]["PolicyDocument"])
    assert f":states:{region}:{ACCOUNT}:execution:" in text


def test_cfn_lint_finds_nothing_in_any_stage_or_region(cli_synths: dict[tuple[str, str], CliSynth]) -> None:
    # One cfn-lint per template, at once (each takes ~20 s of CPU), checked against both regions' specs
    cfn_lint = str(Path(sys.executable).parent / "cfn-lint")
    lints = {
        key: subprocess.Popen(
            [cfn_lint, "--regions", "eu-west-1", "us-east-1", "--", str(run.outdir / "Payments.template.json")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        for key, run in cli_synths.items()
    }
    assert set(lints) == set(CLI_SYNTHS)
    for key, lint in lints.items():
        output, _ = lint.communicate(timeout=600)
        assert (lint.returncode, output.strip()) == (0, ""), (key, output)


def test_the_local_template_has_the_resources_of_the_deployed_one(
    cli_synths: dict[tuple[str, str], CliSynth], synthesized: Synthesized
) -> None:
    # Given the dev template the CLI synthesizes for eu-west-1, and the one the local stack deploys
    # (`payments synth`: dev, for the local account and region)
    deployed = cli_synths[("dev", "eu-west-1")].synthesized().template["Resources"]
    local = synthesized.template["Resources"]

    # Then they hold the same resources under the same logical ids: only the environment differs. (The API's
    # deployment id hashes its methods, whose integration URIs name the region; the CLI adds CDK's
    # version-reporting resource.)
    def kinds(resources: dict[str, dict[str, object]]) -> dict[str, object]:
        return {
            re.sub(r"[0-9a-f]{32}$", "", logical_id): resource["Type"]
            for logical_id, resource in resources.items()
            if resource["Type"] != "AWS::CDK::Metadata"
        }

    assert kinds(local) == kinds(deployed)
    assert json.dumps(local).count(f":{REGION}:{ACCOUNT_ID}:") > 0
    assert f":{ACCOUNT}:" not in json.dumps(local)
