"""Fault injection for the local runtime: duplicate deliveries and crashed execution environments.

Tests flip these on a running stack to prove the system's exactly-once claims under at-least-once
delivery and crashes, without touching the code under test. A seeded fault plan (local_stack/faults.py,
the soak's) adds its own duplicates and crashes on top of these."""

from __future__ import annotations

import threading
from collections import defaultdict

from local_stack.faults import FaultPlan


class Chaos:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.duplicate_deliveries = 1  # every event-source batch is delivered this many times
        self._crashes: dict[str, int] = defaultdict(int)
        self.plan: FaultPlan | None = None

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

    def crash_point(self, function: str) -> str | None:
        """Whether the next invocation of `function` dies: "before" its handler runs, "after" it ran but
        before it answered, or None."""
        if self.take_crash(function):
            return "before"
        return self.plan.crash(function) if self.plan is not None else None

    def deliveries(self) -> int:
        """How many times the next event-source batch is handed to its function."""
        planned = self.plan.deliveries() if self.plan is not None else 1
        return max(1, self.duplicate_deliveries, planned)

    def pending_crashes(self, function: str) -> int:
        with self._lock:
            return self._crashes[function]

    def reset(self) -> None:
        with self._lock:
            self.duplicate_deliveries = 1
            self._crashes.clear()
            self.plan = None
