"""One queue policy for the stack's queues (CloudFormation's 500-resource limit), a policy of its own only for
a queue a service may send to, and a synthesis that fails rather than leave a queue out or name it twice."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from infra.constructs.queue_policy import CONSTRUCT_ID, deny_queue_requests_without_tls
from tests.conftest import Synthesized
from tests.infra.template_facts import as_list, base_name, references

# SQS refuses a policy over 8,192 bytes (its policy quotas). The longest ARN a queue can have: the longest
# partition, a region name longer than any there is, a 12-digit account and an 80-character queue name.
SQS_POLICY_MAX_BYTES = 8192
LONGEST_QUEUE_ARN = f"arn:aws-us-gov:sqs:{'r' * 20}:{'1' * 12}:{'q' * 80}"


def _policies(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in synthesized.resources("AWS::SQS::QueuePolicy").items()}


def test_one_policy_names_every_queue_no_service_may_send_to(synthesized: Synthesized) -> None:
    policies = _policies(synthesized)
    shared = policies.pop(CONSTRUCT_ID)
    # The shared policy only denies: it names queues that allow nothing to anyone.
    assert [s["Effect"] for s in shared["PolicyDocument"]["Statement"]] == ["Deny"]
    # A policy of its own only where a service may send (the settlement bucket's notifications, the bus rule)
    assert {base_name(k) for k in policies} == {
        "SettlementFileQueuePolicy",
        "EventsFanoutQueuePolicy",
        "EventsFanoutQueueDlqPolicy",
    }
    for logical_id, props in policies.items():
        assert len(props["Queues"]) == 1, logical_id
        statements = props["PolicyDocument"]["Statement"]
        assert sorted(s["Effect"] for s in statements) == ["Allow", "Deny"], logical_id
        (allow,) = (s for s in statements if s["Effect"] == "Allow")
        assert "Service" in allow["Principal"], logical_id
    # Every other queue is in the shared one.
    queues = set(synthesized.resources("AWS::SQS::Queue"))
    own = {q for props in policies.values() for q in references(props["Queues"])}
    assert set(references(shared["Queues"])) == queues - own
    assert len(queues - own) == 37


def test_the_shared_policy_fits_sqs_policy_quota_with_the_longest_arns(synthesized: Synthesized) -> None:
    document = _policies(synthesized)[CONSTRUCT_ID]["PolicyDocument"]
    (statement,) = document["Statement"]
    resolved = {**document, "Statement": [{**statement, "Resource": [LONGEST_QUEUE_ARN] * len(statement["Resource"])}]}
    # About 5,200 bytes for 37 queues: room for some twenty more before the policy must be split in two.
    assert len(json.dumps(resolved).encode()) <= SQS_POLICY_MAX_BYTES


def _stack() -> tuple[App, Stack]:
    app = App()
    return app, Stack(app, "Queues")


def _allow_s3(queue: sqs.Queue) -> None:
    queue.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal("s3.amazonaws.com")], actions=["sqs:SendMessage"], resources=["*"]
        )
    )


def test_a_queue_with_its_own_statements_keeps_one_policy_holding_both() -> None:
    _, stack = _stack()
    plain = sqs.Queue(stack, "Plain")
    notified = sqs.Queue(stack, "Notified")
    _allow_s3(notified)
    deny_queue_requests_without_tls(stack)
    template = Template.from_stack(stack).to_json()
    plain_id, notified_id = (stack.get_logical_id(q.node.default_child) for q in (plain, notified))
    policies = {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == "AWS::SQS::QueuePolicy"}
    assert references(policies[CONSTRUCT_ID]["Queues"]) == [plain_id]
    (own,) = (p for k, p in policies.items() if k != CONSTRUCT_ID)
    assert references(own["Queues"]) == [notified_id]
    effects = {s["Effect"]: s for s in own["PolicyDocument"]["Statement"]}
    assert set(effects) == {"Allow", "Deny"}
    assert effects["Deny"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert references(as_list(effects["Deny"]["Resource"])) == [notified_id]


def test_a_queue_created_after_the_policy_fails_synthesis() -> None:
    app, stack = _stack()
    sqs.Queue(stack, "Early")
    deny_queue_requests_without_tls(stack)
    sqs.Queue(stack, "Late")
    with pytest.raises(RuntimeError, match=f"Queues/Late was created after {CONSTRUCT_ID}"):
        app.synth()


def test_statements_added_after_the_policy_fail_synthesis() -> None:
    app, stack = _stack()
    queue = sqs.Queue(stack, "Shared")
    deny_queue_requests_without_tls(stack)
    _allow_s3(queue)
    with pytest.raises(RuntimeError, match="Queues/Shared gained a resource policy of its own"):
        app.synth()
