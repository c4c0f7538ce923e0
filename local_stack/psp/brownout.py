"""A PSP brownout, on request (`POST /_sim/brownout`): for a while, every PSP route answers late, and a
share of its requests fail with a 503 before anything is done (no charge, no payout).

The failures are drawn from a seeded random sequence, so a test that sends its requests in the same order
sees the same failures; the share of 503s is the requested rate over many requests either way."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from local_stack.psp.charges import Reply

MAX_LATENCY_MS = 60_000
MAX_SECONDS = 24 * 3600


def _invalid(message: str, param: str) -> Reply:
    error = {"type": "invalid_request_error", "code": "parameter_invalid", "message": message, "param": param}
    return Reply(400, {"error": error})


class Brownout:
    def __init__(self, *, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._latency_seconds = 0.0
        self._error_rate = 0.0
        self._until = 0.0
        self._draws = random.Random(0)
        self.degraded = 0  # requests delayed
        self.failed = 0  # of which answered 503

    def configure(self, request: dict[str, Any]) -> Reply:
        """Start (or replace) a brownout; `{"seconds": 0}` ends it. Answers `{"until": <unix seconds>}`."""
        seconds = request.get("seconds")
        latency_ms = request.get("latency_ms", 0)
        error_rate = request.get("error_rate", 0)
        seed = request.get("seed", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_SECONDS:
            return _invalid(f"seconds must be a number from 0 to {MAX_SECONDS}.", "seconds")
        if isinstance(latency_ms, bool) or not isinstance(latency_ms, int) or not 0 <= latency_ms <= MAX_LATENCY_MS:
            return _invalid(f"latency_ms must be an integer from 0 to {MAX_LATENCY_MS}.", "latency_ms")
        if isinstance(error_rate, bool) or not isinstance(error_rate, int | float) or not 0 <= error_rate <= 1:
            return _invalid("error_rate must be a number from 0 to 1.", "error_rate")
        if isinstance(seed, bool) or not isinstance(seed, int):
            return _invalid("seed must be an integer.", "seed")
        with self._lock:
            self._latency_seconds = latency_ms / 1000
            self._error_rate = float(error_rate)
            self._until = self._clock() + seconds if seconds else 0.0
            self._draws = random.Random(seed)
            until = self._until or self._clock()
        return Reply(200, {"until": int(until)})

    def degrade(self) -> Reply | None:
        """For a request arriving now: wait the latency, then a 503 (or None: serve it normally)."""
        with self._lock:
            if self._clock() >= self._until:
                return None
            latency, fail = self._latency_seconds, self._draws.random() < self._error_rate
            self.degraded += 1
            self.failed += int(fail)
        if latency:
            self._sleep(latency)
        if not fail:
            return None
        return Reply(
            503,
            {"error": {"type": "api_error", "code": "service_unavailable", "message": "The PSP is degraded; retry."}},
        )
