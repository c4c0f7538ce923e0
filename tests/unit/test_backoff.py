"""Backoff by age: how long a failed record waits, when it goes to the dead-letter queue instead, and how
many receives a message can have before its age is checked (what sizes maxReceiveCount)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from functions.common.backoff import DeadLetter, Reschedule, RetryPolicy, after_failure

POLICY = RetryPolicy(base_seconds=2, cap_seconds=300, max_age_seconds=86_400, error_receives=5)


def test_the_ceiling_doubles_from_the_base_up_to_the_cap() -> None:
    assert [POLICY.ceiling(n) for n in range(1, 11)] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert POLICY.ceiling(10_000) == 300


@pytest.mark.parametrize("receive_count", [1, 2, 5, 8, 9, 50])
def test_equal_jitter_waits_between_half_the_ceiling_and_the_ceiling(receive_count: int) -> None:
    ceiling = POLICY.ceiling(receive_count)
    shortest = POLICY.delay_seconds(receive_count, lambda: 0.0)
    longest = POLICY.delay_seconds(receive_count, lambda: 0.999999)
    assert shortest == -(-ceiling // 2)  # half, rounded up to whole seconds (SQS's unit)
    assert longest == ceiling
    assert {POLICY.delay_seconds(receive_count, lambda: 0.5)} <= set(range(shortest, longest + 1))


def test_worst_case_receives_counts_the_receive_that_finds_the_message_too_old() -> None:
    # Given every receive fails at once and waits the shortest jitter allows
    elapsed, receive = 0.0, 1
    while True:
        verdict = after_failure(
            "transient", receive_count=receive, age_seconds=elapsed, policy=POLICY, draw=lambda: 0.0
        )
        if isinstance(verdict, DeadLetter):
            break
        elapsed += verdict.delay_seconds
        receive += 1
    # Then the age check fires on exactly the receive worst_case_receives names (so a maxReceiveCount of
    # at least that never dead-letters a message younger than a day)
    assert verdict == DeadLetter("max_age")
    assert receive <= POLICY.worst_case_receives() == 584
    assert POLICY.worst_case_receives() - receive <= 1  # whole-second rounding only shortens the sequence


def test_a_transient_failure_is_retried_until_the_message_is_too_old() -> None:
    young = after_failure("transient", receive_count=400, age_seconds=86_399, policy=POLICY, draw=lambda: 0.0)
    old = after_failure("transient", receive_count=2, age_seconds=86_401, policy=POLICY, draw=lambda: 0.0)
    assert young == Reschedule(150)
    assert old == DeadLetter("max_age")


def test_another_error_is_retried_with_backoff_for_a_few_receives_then_dead_lettered() -> None:
    verdicts = [
        after_failure("error", receive_count=n, age_seconds=10, policy=POLICY, draw=lambda: 0.0) for n in range(1, 7)
    ]
    assert verdicts == [
        Reschedule(1),
        Reschedule(2),
        Reschedule(4),
        Reschedule(8),
        DeadLetter("error_receives"),
        DeadLetter("error_receives"),
    ]


def test_a_body_that_cannot_be_parsed_is_dead_lettered_at_once() -> None:
    assert after_failure("poison", receive_count=1, age_seconds=0, policy=POLICY, draw=lambda: 0.0) == DeadLetter(
        "poison"
    )


def test_the_policy_keeps_within_sqs_limits() -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(base_seconds=2, cap_seconds=43_201, max_age_seconds=60, error_receives=5)  # over 12 h
    with pytest.raises(ValidationError):
        RetryPolicy(base_seconds=10, cap_seconds=5, max_age_seconds=60, error_receives=5)
