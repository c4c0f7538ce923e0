"""DynamoDB helpers shared by the adapters."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
from botocore.exceptions import ClientError

from functions.common.aws import CREATION_LOCK


@functools.cache
def _table(name: str) -> Any:
    return boto3.resource("dynamodb").Table(name)


def table(name: str) -> Any:
    with CREATION_LOCK:  # boto3's default session is not thread-safe while it creates resources
        return _table(name)


def reset_tables() -> None:
    _table.cache_clear()


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
