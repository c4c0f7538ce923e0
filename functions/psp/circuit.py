"""The PSP circuit breaker's state machine, pure: a pydantic model and the functions that move it.

  closed     calls go through; their outcomes are counted in a window of `window_seconds`. Once the
             window has `min_calls` calls and at least `failure_rate` of them failed, the circuit opens.
  open       calls fail fast for `cool_down_seconds`; then the circuit is half-open.
  half_open  a few probe calls go through. A failed probe opens it again (a new cool-down);
             `probes_to_close` successful probes close it, with a fresh window.

The state is shared by every execution of the PSP workers (functions/psp/circuit_store.py keeps it in one
DynamoDB item); each execution adds its own counts with `merge` at most once a second. Time is a float of
Unix seconds handed in by the caller (the clock port), so the machine is tested without waiting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CircuitStatus = Literal["closed", "open", "half_open"]
Admission = Literal["call", "probe", "reject"]
_ADMISSIONS: dict[CircuitStatus, Admission] = {"closed": "call", "half_open": "probe", "open": "reject"}


class CircuitPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    window_seconds: float = Field(gt=0)
    min_calls: int = Field(ge=1)
    failure_rate: float = Field(gt=0, le=1)
    cool_down_seconds: float = Field(gt=0)
    probes_to_close: int = Field(ge=1)


class CircuitState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: CircuitStatus = "closed"
    window_started: float = 0.0  # closed: when the current counting window began
    successes: int = 0
    failures: int = 0
    opened_at: float | None = None  # open: when the cool-down began
    probe_successes: int = 0  # half-open
    version: int = 0  # optimistic concurrency of the shared copy


@dataclass(frozen=True)
class Tally:
    """Outcomes one execution observed since it last merged them into the shared state."""

    successes: int = 0
    failures: int = 0
    probe_successes: int = 0
    probe_failures: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.successes + other.successes,
            self.failures + other.failures,
            self.probe_successes + other.probe_successes,
            self.probe_failures + other.probe_failures,
        )

    @property
    def empty(self) -> bool:
        return self == Tally()


def effective_status(state: CircuitState, *, now: float, policy: CircuitPolicy) -> CircuitStatus:
    """An open circuit whose cool-down is over is half-open, even before anyone has written so."""
    if state.status == "open" and state.opened_at is not None and now >= state.opened_at + policy.cool_down_seconds:
        return "half_open"
    return state.status


def admission(state: CircuitState, *, now: float, policy: CircuitPolicy) -> Admission:
    """Whether a call may go to the PSP now: as a normal call, as a probe, or not at all (fail fast)."""
    return _ADMISSIONS[effective_status(state, now=now, policy=policy)]


def _opened(state: CircuitState, now: float) -> CircuitState:
    return CircuitState(status="open", opened_at=now, version=state.version)


def _closed(state: CircuitState, now: float) -> CircuitState:
    return CircuitState(status="closed", window_started=now, version=state.version)


def merge(state: CircuitState, tally: Tally, *, now: float, policy: CircuitPolicy) -> CircuitState:
    """The shared state after adding one execution's tally at `now` (the version is the store's business)."""
    status = effective_status(state, now=now, policy=policy)
    if status == "open":
        return state  # outcomes of calls that began before it opened change nothing
    if status == "half_open":
        if tally.probe_failures:
            return _opened(state, now)
        probe_successes = (state.probe_successes if state.status == "half_open" else 0) + tally.probe_successes
        if probe_successes >= policy.probes_to_close:
            return _closed(state, now)
        return CircuitState(status="half_open", probe_successes=probe_successes, version=state.version)
    window_started, successes, failures = state.window_started, state.successes, state.failures
    if now - window_started >= policy.window_seconds:
        window_started, successes, failures = now, 0, 0  # a new window
    # A probe answered after another execution closed the circuit is an ordinary call.
    successes += tally.successes + tally.probe_successes
    failures += tally.failures + tally.probe_failures
    calls = successes + failures
    if calls >= policy.min_calls and failures >= policy.failure_rate * calls:
        return _opened(state, now)
    return CircuitState(
        status="closed", window_started=window_started, successes=successes, failures=failures, version=state.version
    )
