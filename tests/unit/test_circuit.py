"""The PSP circuit breaker's state machine (pure): closed, open on the error rate, half-open after the
cool-down, closed again by successful probes or opened again by a failed one."""

from __future__ import annotations

from functions.psp.circuit import CircuitPolicy, CircuitState, Tally, admission, effective_status, merge

POLICY = CircuitPolicy(window_seconds=10, min_calls=10, failure_rate=0.5, cool_down_seconds=15, probes_to_close=3)
CLOSED = CircuitState(window_started=1000.0)


def test_a_closed_circuit_lets_calls_through_and_counts_them_in_its_window() -> None:
    state = merge(CLOSED, Tally(successes=6, failures=3), now=1001, policy=POLICY)
    assert (state.status, state.successes, state.failures, state.window_started) == ("closed", 6, 3, 1000.0)
    assert admission(state, now=1001, policy=POLICY) == "call"


def test_it_opens_once_enough_calls_of_the_window_failed() -> None:
    # Given 4 of 9 calls failed: too few calls to judge
    state = merge(CLOSED, Tally(successes=5, failures=4), now=1002, policy=POLICY)
    assert state.status == "closed"
    # When a tenth call fails: 5 of 10, the threshold
    state = merge(state, Tally(failures=1), now=1003, policy=POLICY)
    # Then it opens, and calls fail fast
    assert (state.status, state.opened_at) == ("open", 1003)
    assert admission(state, now=1003, policy=POLICY) == "reject"
    assert admission(state, now=1017.9, policy=POLICY) == "reject"


def test_a_high_rate_below_the_minimum_of_calls_keeps_it_closed() -> None:
    state = merge(CLOSED, Tally(failures=9), now=1001, policy=POLICY)
    assert state.status == "closed"


def test_a_new_window_forgets_the_old_one() -> None:
    state = merge(CLOSED, Tally(successes=1, failures=8), now=1005, policy=POLICY)
    # Ten seconds after the window began, its counts are dropped before adding
    state = merge(state, Tally(failures=2), now=1010, policy=POLICY)
    assert (state.status, state.window_started, state.successes, state.failures) == ("closed", 1010, 0, 2)


def test_outcomes_of_calls_that_began_before_it_opened_change_nothing() -> None:
    opened = merge(CLOSED, Tally(failures=10), now=1001, policy=POLICY)
    assert merge(opened, Tally(successes=50, failures=3), now=1005, policy=POLICY) == opened


def test_after_the_cool_down_it_is_half_open_and_probes() -> None:
    opened = merge(CLOSED, Tally(failures=10), now=1000, policy=POLICY)
    assert effective_status(opened, now=1014.9, policy=POLICY) == "open"
    assert effective_status(opened, now=1015, policy=POLICY) == "half_open"
    assert admission(opened, now=1015, policy=POLICY) == "probe"


def test_enough_successful_probes_close_it_with_a_fresh_window() -> None:
    opened = merge(CLOSED, Tally(failures=10), now=1000, policy=POLICY)
    probing = merge(opened, Tally(probe_successes=2), now=1016, policy=POLICY)
    assert (probing.status, probing.probe_successes) == ("half_open", 2)
    closed = merge(probing, Tally(probe_successes=1), now=1017, policy=POLICY)
    assert closed == CircuitState(status="closed", window_started=1017, version=closed.version)
    assert admission(closed, now=1017, policy=POLICY) == "call"


def test_a_failed_probe_opens_it_again_for_a_new_cool_down() -> None:
    opened = merge(CLOSED, Tally(failures=10), now=1000, policy=POLICY)
    probing = merge(opened, Tally(probe_successes=2), now=1016, policy=POLICY)
    reopened = merge(probing, Tally(probe_successes=1, probe_failures=1), now=1020, policy=POLICY)
    assert (reopened.status, reopened.opened_at, reopened.probe_successes) == ("open", 1020, 0)
    assert admission(reopened, now=1034, policy=POLICY) == "reject"
    assert admission(reopened, now=1035, policy=POLICY) == "probe"


def test_a_probe_answered_after_the_circuit_closed_counts_as_an_ordinary_call() -> None:
    state = merge(CLOSED, Tally(probe_successes=1, probe_failures=1), now=1001, policy=POLICY)
    assert (state.status, state.successes, state.failures) == ("closed", 1, 1)


def test_the_version_is_left_to_the_store() -> None:
    state = CircuitState(window_started=1000, version=7)
    assert merge(state, Tally(failures=10), now=1001, policy=POLICY).version == 7
    assert merge(state, Tally(successes=1), now=1001, policy=POLICY).version == 7
