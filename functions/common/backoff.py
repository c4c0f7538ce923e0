"""What a queue worker does with a record that failed: come back later (its visibility extended with
exponential backoff and jitter), or go to the dead-letter queue. Pure arithmetic, no AWS here.

Backoff is by the record's age, not by how often it was received: a transient failure (the PSP slow or
failing, its circuit open, the time budget spent before the record started) is retried until the message
is older than `max_age_seconds`; any other error is retried for `error_receives` receives; a body that
cannot be parsed is dead-lettered at once. The queue's maxReceiveCount is only a backstop, sized with
`worst_case_receives` so that it never fires before the age check does (docs/architecture.md)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# SQS: a message's visibility timeout can be set to at most 12 hours.
SQS_MAX_VISIBILITY_SECONDS = 43_200
# SQS: a redrive policy's maxReceiveCount is at most 1000.
SQS_MAX_RECEIVE_COUNT = 1000

FailureKind = Literal["transient", "error", "poison"]
DeadLetterReason = Literal["max_age", "error_receives", "poison"]


class TransientError(Exception):
    """A failure that time heals (a dependency slow or unavailable, a budget spent): retried by age."""


class NotStarted(TransientError):
    """The record was not started: too little of the invocation's time was left for it."""


@dataclass(frozen=True)
class Reschedule:
    delay_seconds: int


@dataclass(frozen=True)
class DeadLetter:
    reason: DeadLetterReason


class RetryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    base_seconds: int = Field(ge=1)  # the first retry's delay ceiling
    cap_seconds: int = Field(ge=1, le=SQS_MAX_VISIBILITY_SECONDS)  # no delay is longer
    max_age_seconds: int = Field(ge=1)  # older than this, a failing message is dead-lettered
    error_receives: int = Field(ge=1)  # a non-transient error is dead-lettered on this receive

    @model_validator(mode="after")
    def _ordered(self) -> RetryPolicy:
        if self.cap_seconds < self.base_seconds:
            raise ValueError("the backoff cap must not be below its base")
        return self

    def ceiling(self, receive_count: int) -> int:
        """The longest delay after the `receive_count`-th receive: base x 2^(n-1), capped."""
        exponent = min(max(receive_count, 1) - 1, 32)  # 2^32 x base is past any cap
        return int(min(self.cap_seconds, self.base_seconds * 2**exponent))

    def delay_seconds(self, receive_count: int, draw: Callable[[], float]) -> int:
        """Equal jitter: half the ceiling, plus a random share of the other half (`draw()` in [0, 1)).
        Spreads retries apart like full jitter, yet never retries sooner than half the ceiling, which is
        what bounds the number of receives in `worst_case_receives`."""
        ceiling = self.ceiling(receive_count)
        return min(ceiling, math.ceil(ceiling / 2 + draw() * ceiling / 2))

    def worst_case_receives(self) -> int:
        """The most receives a message can have before its age check dead-letters it: every receive fails
        at once and every delay is the shortest jitter allows (half the ceiling). The receive on which the
        age is found past `max_age_seconds` is counted, so a maxReceiveCount of at least this never sends
        a message to the DLQ while it is younger than the configured age."""
        elapsed, receives = 0.0, 1
        while elapsed <= self.max_age_seconds:
            elapsed += self.ceiling(receives) / 2
            receives += 1
        return receives


def after_failure(
    kind: FailureKind, *, receive_count: int, age_seconds: float, policy: RetryPolicy, draw: Callable[[], float]
) -> Reschedule | DeadLetter:
    """What happens to a record that failed on its `receive_count`-th receive, `age_seconds` after it was sent."""
    if kind == "poison":
        return DeadLetter("poison")  # no retry can parse it
    if age_seconds > policy.max_age_seconds:
        return DeadLetter("max_age")
    if kind == "error" and receive_count >= policy.error_receives:
        return DeadLetter("error_receives")
    return Reschedule(policy.delay_seconds(receive_count, draw))
