"""moto's server with its DynamoDB backend made safe under concurrent requests.

moto (5.2.x) serves each request on its own thread without locking, and a TransactWriteItems that fails
(a condition check, as every idempotent repeat does) puts back a deep copy of each table it named, taken
when it started: any write another request committed meanwhile to one of those tables is silently lost.
The soak found it (a seller's wallet credit, reported applied, gone from the table). DynamoDB itself
never loses a committed write, so the local cloud serializes every call into the DynamoDB backend."""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_BACKEND_LOCK = threading.RLock()


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _BACKEND_LOCK:
            return method(*args, **kwargs)

    return call


def serialize_dynamodb() -> None:
    """Every method of moto's DynamoDB backend runs under one lock (the data is one in-memory structure)."""
    for name, member in list(vars(DynamoDBBackend).items()):
        if inspect.isfunction(member) and not name.startswith("__"):
            setattr(DynamoDBBackend, name, _serialized(member))


if __name__ == "__main__":
    serialize_dynamodb()
    main()
