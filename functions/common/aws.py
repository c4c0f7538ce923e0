"""Lazy boto3 clients: created on first use, after moto (tests) or the endpoint (local) is set."""

from __future__ import annotations

import functools
import threading
from typing import Any

import boto3
from botocore.config import Config

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
# Creating clients on boto3's default session is not thread-safe (workers handle records on threads);
# using a created client is.
CREATION_LOCK = threading.RLock()


@functools.cache
def _client(service: str) -> Any:
    return boto3.client(service, config=CLIENT_CONFIG)


def client(service: str) -> Any:
    with CREATION_LOCK:
        return _client(service)


def reset_clients() -> None:
    """Forget cached clients (tests that switch between mocked accounts)."""
    _client.cache_clear()
