"""Which DynamoDB operations a block of code calls, seen through a botocore event hook."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from functions.common.aws import reset_clients
from functions.common.dynamo import reset_tables


@contextmanager
def dynamodb_operations() -> Iterator[list[str]]:
    """Yields the list of DynamoDB operation names called inside the block (e.g. "Query", "Scan").

    Clients copy their session's hooks when created, so the cached ones are dropped on the way in."""
    called: list[str] = []

    def record(model: Any, **_: Any) -> None:
        called.append(model.name)

    session = boto3._get_default_session()
    session.events.register("before-call.dynamodb", record)
    reset_clients()
    reset_tables()
    try:
        yield called
    finally:
        session.events.unregister("before-call.dynamodb", record)
        reset_clients()
        reset_tables()
