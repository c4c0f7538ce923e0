"""cdk-nag: every acknowledged finding is on one specific resource and says why (synthesis fails on any
other finding; tests/infra/test_template_foundation.py proves that)."""

from __future__ import annotations

import json
from collections import defaultdict

from local_stack.template import ACCOUNT_ID, REGION
from tests.conftest import Synthesized

# The rules the stack acknowledges anywhere; a new kind of acknowledgement is a review decision.
ACKNOWLEDGED_RULES = {
    "AwsSolutions-IAM5[Resource::*]",
    "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
    "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    "AwsSolutions-APIG4",
    "AwsSolutions-COG4",
    "AwsSolutions-SMG4",
}
ACKNOWLEDGED_PREFIXES = (
    "AwsSolutions-IAM5[Resource::<",  # a table's own indexes, or one key prefix of a bucket
    # a Distributed Map's own child executions (<state machine>:*, RedriveExecution on <state machine>/*:*), in
    # the stack's region and account, whether these render as tokens or as concrete values
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:",
)


def _acknowledgements(synthesized: Synthesized) -> dict[str, dict[str, str]]:
    metadata = json.loads((synthesized.outdir / "Payments.metadata.json").read_text())
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for path, entries in metadata.items():
        for entry in entries:
            if entry["type"] == "aws:cdk:acknowledged-rules":
                for rule, reason in entry["data"].items():
                    found[path][rule.removeprefix("Annotation::")] = reason
    return found


def test_every_acknowledgement_is_on_a_specific_resource_with_a_reason(synthesized: Synthesized) -> None:
    acknowledgements = _acknowledgements(synthesized)
    assert acknowledgements
    for path, rules in acknowledgements.items():
        assert path.count("/") >= 2, f"{path}: acknowledged on the stack, not a resource"
        for rule, reason in rules.items():
            assert len(reason) >= 60 and reason.endswith("."), (path, rule, reason)
            assert rule in ACKNOWLEDGED_RULES or rule.startswith(ACKNOWLEDGED_PREFIXES), (path, rule)


def test_the_wildcard_kms_actions_are_acknowledged_only_for_grants_on_the_stacks_keys(
    synthesized: Synthesized,
) -> None:
    # Given the roles whose policies hold kms:GenerateDataKey* / kms:ReEncrypt*
    keys = set(synthesized.resources("AWS::KMS::Key"))
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("kms:") for a in actions):
                # Then they apply to the stack's keys, never to '*'
                targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                assert targets and all(isinstance(t, dict) and t["Fn::GetAtt"][0] in keys for t in targets), targets


def test_the_distributed_map_acknowledgement_holds_for_a_concrete_region_and_account(
    synthesized: Synthesized,
) -> None:
    # Given the local template, synthesized for the local account and region (as a deployment is for its own)
    acknowledgements = _acknowledgements(synthesized)
    ((path, rules),) = [(p, r) for p, r in acknowledgements.items() if p.endswith("/DistributedMapPolicy/Resource")]
    # Then the two findings on the state machine's own executions were acknowledged with their values
    # (the token form is covered by test_template_foundation.test_cdk_nag_findings_fail_synthesis)
    assert path == "/Payments/Settlement/LargeFileReconciliation/DistributedMapPolicy/Resource"
    prefix = f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:{REGION}:{ACCOUNT_ID}:execution:"
    assert len(rules) == 2 and all(rule.startswith(prefix) for rule in rules), rules
    assert sorted(rule.rsplit("}", 1)[1] for rule in rules) == ["/*:*]", ":*]"]
