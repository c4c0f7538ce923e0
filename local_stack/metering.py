"""Counts the AWS API calls the system makes (by service and operation, with DynamoDB capacity
units) and Lambda invocations with their duration, for the cost benchmark."""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from pathlib import Path
from typing import Any

CALL_LOG_ENV = "PAYMENTS_LOCAL_CALL_LOG"


def _item_kb(item: Any) -> int:
    return max(1, math.ceil(len(json.dumps(item, default=str)) / 1024))


def capacity_units(service: str, operation: str, params: dict[str, Any]) -> float:
    """DynamoDB on-demand request units one call consumes (write: per 1 KB; read: per 4 KB, strongly
    consistent = 1, eventually = 0.5; transactions double). Items are assumed under 4 KB for reads."""
    if service != "dynamodb":
        return 0.0
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return float(_item_kb(params.get("Item") or params))
    if operation == "TransactWriteItems":
        return float(sum(2 * _item_kb(item) for item in params.get("TransactItems", [])))
    if operation == "BatchWriteItem":
        return float(sum(len(requests) for requests in params.get("RequestItems", {}).values()))
    if operation == "TransactGetItems":
        return 2.0 * len(params.get("TransactItems", []))
    if operation in ("GetItem", "Query", "Scan"):
        return 1.0 if params.get("ConsistentRead") else 0.5
    return 0.0


def call_record(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    kind = (
        "write"
        if operation in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
        else "read"
    )
    return {
        "service": service,
        "operation": operation,
        "units": capacity_units(service, operation, params),
        "unit_kind": kind,
    }


def install_worker_hook(path: str) -> None:
    """In a Lambda worker: append every boto3 call this process makes to the call log."""
    import boto3

    log = Path(path).open("a", buffering=1)  # noqa: SIM115 - lives as long as the worker
    lock = threading.Lock()
    boto3.setup_default_session()

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        line = json.dumps(call_record(model.service_model.service_name, model.name, params))
        with lock:
            log.write(line + "\n")

    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-parameter-build", record)


class Meter:
    """Collects what one measured workload did: worker calls from the call log, event-source calls
    made on the function's behalf (SQS receives, deletes and visibility changes; DynamoDB stream reads
    and on-failure sends), Lambda invocations and API requests."""

    def __init__(self, call_log: Path) -> None:
        self.call_log = call_log
        self._lock = threading.Lock()
        self.runtime_calls: list[dict[str, Any]] = []
        self.invocations: Counter[str] = Counter()
        self.billed_ms: Counter[str] = Counter()
        self.api_requests = 0

    def record_runtime_call(self, service: str, operation: str, params: dict[str, Any]) -> None:
        with self._lock:
            self.runtime_calls.append(call_record(service, operation, params))

    def record_invocation(self, function: str, duration_ms: float) -> None:
        with self._lock:
            self.invocations[function] += 1
            self.billed_ms[function] += max(1, math.ceil(duration_ms))

    def record_api_request(self) -> None:
        with self._lock:
            self.api_requests += 1

    def reset(self) -> None:
        with self._lock:
            self.runtime_calls.clear()
            self.invocations.clear()
            self.billed_ms.clear()
            self.api_requests = 0
        self.call_log.write_text("")

    def calls(self) -> list[dict[str, Any]]:
        worker_calls = [json.loads(line) for line in self.call_log.read_text().splitlines() if line.strip()]
        with self._lock:
            return worker_calls + list(self.runtime_calls)
