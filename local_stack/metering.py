"""Counts the AWS API calls the system makes (by service and operation, with DynamoDB capacity
units) and Lambda invocations with their duration, for the cost benchmark."""

from __future__ import annotations

import json
import math
import resource
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import urllib3
import urllib3.connectionpool
import urllib3.util

CALL_LOG_ENV = "PAYMENTS_LOCAL_CALL_LOG"
_DEFAULT_PORTS = {"http": 80, "https": 443}
HTTP_CALL = "http"  # a request to anything but AWS, in an invocation's calls


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
        "kind": "call",
        "service": service,
        "operation": operation,
        "units": capacity_units(service, operation, params),
        "unit_kind": kind,
    }


class WorkerMeter:
    """In a Lambda worker: appends every boto3 call this process makes to the call log, and one record per
    invocation with the handler's CPU time and the calls it made (AWS by operation, and other HTTP
    requests: the PSP, the payout provider, webhook endpoints), from which the benchmark models the
    duration AWS would bill. Calls are kept per thread: a worker that handles a batch's records on
    threads waits for their calls side by side, not one after another."""

    def __init__(self, path: str, function: str, aws_endpoint: str | None) -> None:
        self._log = Path(path).open("a", buffering=1)  # noqa: SIM115 - lives as long as the worker
        self._lock = threading.Lock()
        self._function = function
        self._aws = urllib3.util.parse_url(aws_endpoint) if aws_endpoint else None
        self._calls: dict[int, Counter[str]] = {}
        self._main_thread = threading.get_ident()
        self._cpu_started = 0.0

    def _write(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.write(json.dumps(entry) + "\n")

    def install(self) -> None:
        import boto3

        boto3.setup_default_session()

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            entry = call_record(model.service_model.service_name, model.name, params)
            self._count(f"{entry['service']}.{entry['operation']}")
            self._write({**entry, "function": self._function})

        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-parameter-build", record)
        self._count_http_requests()

    def _count_http_requests(self) -> None:
        """Every request through urllib3 that is not to the AWS endpoint (boto3's are counted above)."""
        urlopen = urllib3.connectionpool.HTTPConnectionPool.urlopen
        meter = self

        def counted(pool: urllib3.connectionpool.HTTPConnectionPool, *args: Any, **kwargs: Any) -> Any:
            aws = meter._aws
            if aws is None or (pool.host, pool.port) != (aws.host, aws.port or _DEFAULT_PORTS.get(aws.scheme or "")):
                meter._count(HTTP_CALL)
            return urlopen(pool, *args, **kwargs)

        urllib3.connectionpool.HTTPConnectionPool.urlopen = counted  # type: ignore[method-assign,assignment]

    def _count(self, call: str) -> None:
        with self._lock:
            self._calls.setdefault(threading.get_ident(), Counter())[call] += 1

    def begin_invocation(self) -> None:
        with self._lock:
            self._calls.clear()
        self._cpu_started = time.process_time()

    def end_invocation(self) -> None:
        cpu_ms = (time.process_time() - self._cpu_started) * 1000
        with self._lock:
            main = self._calls.pop(self._main_thread, Counter())
            others = [dict(c) for c in self._calls.values()]
        calls = sum((Counter(c) for c in others), main)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KB
        self._write(
            {
                "kind": "invocation",
                "function": self._function,
                "cpu_ms": round(cpu_ms, 3),
                "calls": dict(calls),
                "main_thread_calls": dict(main),
                "other_thread_calls": others,
                "peak_rss_mb": round(peak_rss_mb, 1),
            }
        )


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

    def _logged(self, kind: str) -> list[dict[str, Any]]:
        entries = (json.loads(line) for line in self.call_log.read_text().splitlines() if line.strip())
        return [entry for entry in entries if entry.get("kind", "call") == kind]

    def calls(self) -> list[dict[str, Any]]:
        """Every AWS call: the functions' (from the call log) and the runtime's on their behalf."""
        with self._lock:
            return self._logged("call") + list(self.runtime_calls)

    def dynamodb_writes(self) -> list[dict[str, Any]]:
        """The local cloud's record of each DynamoDB write, with the units AWS would bill (dynamodb_meter)."""
        return self._logged("dynamodb_write")

    def worker_invocations(self) -> list[dict[str, Any]]:
        """Each invocation's CPU time and calls, as its worker saw them."""
        return self._logged("invocation")
