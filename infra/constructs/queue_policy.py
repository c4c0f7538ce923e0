"""Every queue of the stack refuses requests that are not made over TLS, with one queue policy for them all.

CDK's `enforce_ssl` gives each queue a policy of its own: one CloudFormation resource per queue, against the
stack's limit of 500. Instead, one `AWS::SQS::QueuePolicy` names every queue and denies `sqs:*` on all their
ARNs without TLS (the shape AWS documents for a policy that several queues share). SQS keeps one policy per
queue, and a queue named by two QueuePolicy resources keeps whichever CloudFormation wrote last: so a queue
whose resource policy has statements of its own (a service allowed to send to it: S3 notifications, an
EventBridge rule) stays out of the shared policy and gets the same deny in its own policy."""

from __future__ import annotations

import jsii
from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IValidation

CONSTRUCT_ID = "QueuesTlsOnly"


def tls_only_statement(queue_arns: list[str]) -> iam.PolicyStatement:
    """The statement CDK's `enforce_ssl` writes, for any number of queues."""
    return iam.PolicyStatement(
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["sqs:*"],
        resources=queue_arns,
        conditions={"Bool": {"aws:SecureTransport": "false"}},
    )


def _queues_of(stack: Stack) -> list[sqs.Queue]:
    return [c for c in stack.node.find_all() if isinstance(c, sqs.Queue)]


def _has_own_policy(queue: sqs.Queue) -> bool:
    """Whether `add_to_resource_policy` gave the queue its policy (CDK keeps it private, as child `Policy`)."""
    return isinstance(queue.node.try_find_child("Policy"), sqs.QueuePolicy)


@jsii.implements(IValidation)
class _EveryQueueInOnePolicy:
    """Checked when the app synthesizes: a queue created, or given statements of its own, after the shared
    policy was built would go without the deny, or be named by two policies."""

    def __init__(self, stack: Stack, shared: list[sqs.Queue], own: list[sqs.Queue]) -> None:
        self.stack = stack
        self.shared = {q.node.path for q in shared}
        self.own = {q.node.path for q in own}

    def validate(self) -> list[str]:
        errors = []
        for queue in _queues_of(self.stack):
            path = queue.node.path
            if path in self.shared and _has_own_policy(queue):
                errors.append(
                    f"{path} gained a resource policy of its own after {CONSTRUCT_ID} named it: "
                    "add its statements before deny_queue_requests_without_tls runs"
                )
            elif path not in self.shared and path not in self.own:
                errors.append(f"{path} was created after {CONSTRUCT_ID}: it does not refuse requests without TLS")
        return errors


def deny_queue_requests_without_tls(scope: Construct) -> sqs.CfnQueuePolicy:
    """Run last, once the stack holds every queue and every queue's own statements. Queues are created
    without `enforce_ssl` (it would give each a policy)."""
    stack = Stack.of(scope)
    queues = _queues_of(stack)
    own = [q for q in queues if _has_own_policy(q)]
    shared = [q for q in queues if not _has_own_policy(q)]
    for queue in own:
        queue.add_to_resource_policy(tls_only_statement([queue.queue_arn]))
    policy = sqs.CfnQueuePolicy(
        stack,
        CONSTRUCT_ID,
        queues=[q.queue_url for q in shared],
        policy_document=iam.PolicyDocument(statements=[tls_only_statement([q.queue_arn for q in shared])]),
    )
    policy.node.add_validation(_EveryQueueInOnePolicy(stack, shared, own))
    return policy
