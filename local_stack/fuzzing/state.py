"""A digest of everything the stack keeps: every DynamoDB table's items, every SQS queue's depth, every
state machine's executions and every bucket's objects, read from moto. Two equal digests mean nothing
was written in between; a difference names the resources that changed."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

QUEUE_DEPTHS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
Digest = dict[str, str]


@dataclass(frozen=True)
class StackResources:
    tables: tuple[str, ...]
    queue_urls: tuple[str, ...]  # work queues: empty when the stack is idle
    dead_letter_queue_urls: tuple[str, ...]  # may hold earlier failures; only their depth matters
    state_machine_arns: tuple[str, ...]
    buckets: tuple[str, ...]


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StateProbe:
    def __init__(self, resources: StackResources, clients: Callable[[str], Any]) -> None:
        self.resources = resources
        self.clients = clients
        self._dynamodb = clients("dynamodb")
        self._sqs = clients("sqs")
        self._sfn = clients("stepfunctions")
        self._s3 = clients("s3")

    def _table(self, name: str) -> str:
        items: list[str] = []
        pages = self._dynamodb.get_paginator("scan").paginate(TableName=name, ConsistentRead=True)
        for page in pages:
            # default=repr: binary attributes (a sealed bank account) come back as bytes
            items += [json.dumps(item, sort_keys=True, default=repr) for item in page["Items"]]
        return f"{len(items)} items {_hash(sorted(items))}"

    def queue_depth(self, url: str) -> int:
        attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(QUEUE_DEPTHS))["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in QUEUE_DEPTHS)

    def _executions(self, arn: str) -> list[tuple[str, str]]:
        executions: list[tuple[str, str]] = []
        for page in self._sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
            executions += [(e["name"], e["status"]) for e in page["executions"]]
        return sorted(executions)

    def _objects(self, bucket: str) -> list[tuple[str, str]]:
        objects: list[tuple[str, str]] = []
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            objects += [(o["Key"], o["VersionId"]) for o in page.get("Versions", [])]
        return sorted(objects)

    def digest(self) -> Digest:
        digest: Digest = {}
        for table in self.resources.tables:
            digest[f"table {table}"] = self._table(table)
        for url in (*self.resources.queue_urls, *self.resources.dead_letter_queue_urls):
            digest[f"queue {url.rsplit('/', 1)[-1]}"] = f"{self.queue_depth(url)} messages"
        for arn in self.resources.state_machine_arns:
            executions = self._executions(arn)
            digest[f"state machine {arn.rsplit(':', 1)[-1]}"] = f"{len(executions)} executions {_hash(executions)}"
        for bucket in self.resources.buckets:
            objects = self._objects(bucket)
            digest[f"bucket {bucket}"] = f"{len(objects)} objects {_hash(objects)}"
        return digest

    def busy(self) -> bool:
        """Work still in flight: a message in a work queue, or one a dead-letter queue has not made visible.
        (Running executions are in the digest: one that waits for ever must not stop the run.)"""
        if any(self.queue_depth(url) for url in self.resources.queue_urls):
            return True
        for url in self.resources.dead_letter_queue_urls:
            attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(QUEUE_DEPTHS[1:]))
            if any(int(v) for v in attributes["Attributes"].values()):
                return True
        return False

    def settled(self, *, timeout: float, interval: float = 0.5) -> tuple[Digest, bool]:
        """Wait until nothing is in flight and two digests `interval` apart agree; return the last digest
        and whether the stack settled within `timeout`."""
        deadline = time.monotonic() + timeout
        previous: Digest | None = None
        while True:
            if self.busy():
                previous = None
            else:
                current = self.digest()
                if current == previous:
                    return current, True
                previous = current
            if time.monotonic() > deadline:
                return self.digest(), False
            time.sleep(interval)


def changes(before: Digest, after: Digest) -> list[str]:
    return [
        f"{name}: {before.get(name)} -> {after.get(name)}"
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]
