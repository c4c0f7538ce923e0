"""Fault injection for the local runtime: duplicate deliveries and crashed execution environments.

Tests flip these on a running stack to prove the system's exactly-once claims under at-least-once
delivery and crashes, without touching the code under test."""

from __future__ import annotations

import threading
from collections import defaultdict


class Chaos:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.duplicate_deliveries = 1  # every event-source batch is delivered this many times
        self._crashes: dict[str, int] = defaultdict(int)

    def crash_next(self, function: str, times: int = 1) -> None:
        """The next `times` invocations of `function` (logical id) kill their execution environment."""
        with self._lock:
            self._crashes[function] += times

    def take_crash(self, function: str) -> bool:
        with self._lock:
            if self._crashes[function] > 0:
                self._crashes[function] -= 1
                return True
            return False

    def pending_crashes(self, function: str) -> int:
        with self._lock:
            return self._crashes[function]

    def reset(self) -> None:
        with self._lock:
            self.duplicate_deliveries = 1
            self._crashes.clear()
