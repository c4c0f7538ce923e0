"""DynamoDB helpers shared by the adapters."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
from botocore.exceptions import ClientError

from functions.common.aws import CLIENT_CONFIG, CREATION_LOCK

# One Table resource per thread and table: boto3 resources are not thread-safe (clients are), and the
# PSP workers handle a batch's records on threads. `reset_tables` retires every thread's cache at once.
_per_thread = threading.local()
_generation = 0


def table(name: str) -> Any:
    tables: dict[str, Any] | None = getattr(_per_thread, "tables", None)
    if tables is None or getattr(_per_thread, "generation", None) != _generation:
        tables = _per_thread.tables = {}
        _per_thread.generation = _generation
    if name not in tables:
        with CREATION_LOCK:  # boto3's default session is not thread-safe while it creates resources
            tables[name] = boto3.resource("dynamodb", config=CLIENT_CONFIG).Table(name)
    return tables[name]


def reset_tables() -> None:
    global _generation
    _generation += 1


def items(table_name: str, operation: str = "query", **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item a Query (or a Scan, `operation="scan"`) returns, page after page."""
    read = getattr(table(table_name), operation)
    while True:
        page = read(**kwargs)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def is_condition_failure(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons") or []
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return False


def cancellation_codes(error: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in error.response.get("CancellationReasons") or []]


def plain(value: Any) -> Any:
    """DynamoDB's Decimals back to int (all our numbers are integer minor units or counters)."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
