"""The PSP circuit breaker as executions run it: each keeps a local view, shares its outcomes through one
stored state at most once a second, fails fast while the circuit is open, and goes on alone when the store
is unreachable. The store here is an in-memory fake with the DynamoDB adapter's versioned writes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from functions.psp.breaker import CircuitBreaker, CircuitStoreUnavailable, GuardedPsp
from functions.psp.circuit import CircuitPolicy, CircuitState
from functions.psp.models import ChargeResult, CircuitOpen, PspBusy, PspUnavailable

POLICY = CircuitPolicy(window_seconds=10, min_calls=4, failure_rate=0.5, cool_down_seconds=5, probes_to_close=2)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class MemoryStore:
    states: dict[str, CircuitState] = field(default_factory=dict)
    reads: int = 0
    writes: int = 0
    down: bool = False

    def read(self, name: str) -> CircuitState:
        if self.down:
            raise CircuitStoreUnavailable("down")
        self.reads += 1
        return self.states.get(name, CircuitState())

    def replace(self, name: str, state: CircuitState, *, expected_version: int, now: float) -> bool:
        if self.down:
            raise CircuitStoreUnavailable("down")
        if self.states.get(name, CircuitState()).version != expected_version:
            return False
        self.writes += 1
        self.states[name] = state.model_copy(update={"version": expected_version + 1})
        return True


@dataclass
class Observer:
    synced_states: list[str] = field(default_factory=list)
    rejections: int = 0
    failures: list[str] = field(default_factory=list)

    def synced(self, state: CircuitState, *, now: float) -> None:
        self.synced_states.append(state.status)

    def rejected(self) -> None:
        self.rejections += 1

    def sync_failed(self, error: Exception) -> None:
        self.failures.append(str(error))


class Psp:
    """A PSP whose next answers are scripted: "ok", "down" (PspUnavailable) or "busy" (a 409)."""

    def __init__(self) -> None:
        self.answers: list[str] = []
        self.calls = 0

    def charge(
        self, *, idempotency_key: str, amount: int, currency: str, payment_method: str, merchant_reference: str
    ) -> ChargeResult:
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "down":
            raise PspUnavailable("PSP answered 503")
        if answer == "busy":
            raise PspBusy("PSP answered 409")
        return ChargeResult(status="succeeded", psp_reference=f"ch_{idempotency_key}")


def breaker(store: MemoryStore, clock: Clock, observer: Observer | None = None) -> CircuitBreaker:
    return CircuitBreaker("psp", POLICY, store, clock=clock, observer=observer or Observer(), sync_seconds=1.0)


def charge(psp: GuardedPsp, key: str = "po_1") -> ChargeResult:
    return psp.charge(
        idempotency_key=key, amount=100, currency="USD", payment_method="tok_visa", merchant_reference=key
    )


def test_it_reads_the_shared_state_at_most_once_a_second() -> None:
    store, clock = MemoryStore(), Clock()
    psp = GuardedPsp(Psp(), breaker(store, clock))
    for i in range(20):  # 20 calls within half a second
        charge(psp, f"po_{i}")
        clock.now += 0.025
    assert (store.reads, store.writes) == (1, 0)  # the first call's read; nothing to share yet
    clock.now += 1
    charge(psp, "po_late")
    assert (store.reads, store.writes) == (2, 1)  # the 20 successes shared in one write
    assert store.states["psp"].successes == 20


def test_failures_open_the_circuit_for_this_execution_at_once_and_fail_fast() -> None:
    store, clock, observer = MemoryStore(), Clock(), Observer()
    inner = Psp()
    psp = GuardedPsp(inner, breaker(store, clock, observer))
    inner.answers = ["down"] * 4
    for i in range(4):
        with pytest.raises(PspUnavailable):
            charge(psp, f"po_{i}")
    # Then the next call is not made
    with pytest.raises(CircuitOpen):
        charge(psp, "po_5")
    assert (inner.calls, observer.rejections) == (4, 1)


def test_a_409_for_a_duplicate_in_flight_is_retried_but_never_opens_the_circuit() -> None:
    # Given the same orders on two workers: the PSP answers 409 to the second request of each
    store, clock, observer = MemoryStore(), Clock(), Observer()
    inner = Psp()
    psp = GuardedPsp(inner, breaker(store, clock, observer))
    inner.answers = ["busy"] * 6
    for i in range(6):
        with pytest.raises(PspBusy):  # a PspUnavailable: the message comes back later
            charge(psp, f"po_{i}")
    # Then the circuit stays closed: the next call is made, and succeeds
    assert charge(psp, "po_next").status == "succeeded"
    assert (inner.calls, observer.rejections) == (7, 0)


def test_the_state_is_shared_with_every_other_execution() -> None:
    store, clock = MemoryStore(), Clock()
    first_psp, second_psp = Psp(), Psp()
    first = GuardedPsp(first_psp, breaker(store, clock))
    second = GuardedPsp(second_psp, breaker(store, clock))
    charge(second)  # the second execution has read the (closed) state
    first_psp.answers = ["down"] * 4
    for i in range(4):
        with pytest.raises(PspUnavailable):
            charge(first, f"po_{i}")
    clock.now += 1
    with pytest.raises(CircuitOpen):
        charge(first)  # shares its failures: the stored circuit opens
    assert store.states["psp"].status == "open"
    clock.now += 0.5
    # When the second execution next syncs, it fails fast too, without calling the PSP
    with pytest.raises(CircuitOpen):
        charge(second, "po_other")
    assert second_psp.calls == 1


def test_after_the_cool_down_probes_close_it_again() -> None:
    store, clock, observer = MemoryStore(), Clock(), Observer()
    inner = Psp()
    psp = GuardedPsp(inner, breaker(store, clock, observer))
    inner.answers = ["down"] * 4
    for i in range(4):
        with pytest.raises(PspUnavailable):
            charge(psp, f"po_{i}")
    clock.now += 5  # the cool-down
    charge(psp, "probe_1")
    charge(psp, "probe_2")  # two good probes close it, in this execution's view at once
    charge(psp, "po_after")
    clock.now += 1
    charge(psp, "po_shared")
    assert store.states["psp"].status == "closed"
    assert inner.calls == 8


def test_a_failed_probe_opens_it_again() -> None:
    store, clock = MemoryStore(), Clock()
    inner = Psp()
    psp = GuardedPsp(inner, breaker(store, clock))
    inner.answers = ["down"] * 5
    for i in range(4):
        with pytest.raises(PspUnavailable):
            charge(psp, f"po_{i}")
    clock.now += 5
    with pytest.raises(PspUnavailable):
        charge(psp, "probe")
    with pytest.raises(CircuitOpen):
        charge(psp, "po_next")
    assert inner.calls == 5


def test_one_probe_at_a_time_per_execution() -> None:
    store, clock = MemoryStore(), Clock()
    cb = breaker(store, clock)
    for _ in range(4):
        cb.record(cb.admit(), ok=False)
    clock.now += 5
    assert cb.admit() == "probe"
    with pytest.raises(CircuitOpen):
        cb.admit()  # the first probe has not answered yet
    cb.abandon("probe")  # it ended in our own error: no verdict on the PSP
    assert cb.admit() == "probe"


def test_an_unreachable_store_leaves_the_breaker_on_its_own_view() -> None:
    store, clock, observer = MemoryStore(down=True), Clock(), Observer()
    inner = Psp()
    psp = GuardedPsp(inner, breaker(store, clock, observer))
    charge(psp)
    inner.answers = ["down"] * 4
    for i in range(4):
        with pytest.raises(PspUnavailable):
            charge(psp, f"po_{i}")
        clock.now += 1
    with pytest.raises(CircuitOpen):
        charge(psp, "po_x")
    assert observer.failures and store.writes == 0
    # When the store is back, the tally kept meanwhile is shared
    store.down = False
    clock.now += 1
    with pytest.raises(CircuitOpen):
        charge(psp, "po_y")
    assert (store.states["psp"].status, store.writes) == ("open", 1)


def test_a_lost_race_reads_again_and_merges_onto_the_winner() -> None:
    class RacingStore(MemoryStore):
        def replace(self, name: str, state: CircuitState, *, expected_version: int, now: float) -> bool:
            if self.writes == 0 and "psp" not in self.states:
                # Another execution writes between this one's read and its write
                self.states["psp"] = CircuitState(window_started=1000, successes=3, failures=0, version=3)
            return super().replace(name, state, expected_version=expected_version, now=now)

    store, clock = RacingStore(), Clock()
    cb = breaker(store, clock)
    cb.admit()
    cb.record("call", ok=False)
    clock.now += 1
    cb.admit()
    # Then its failure lands on top of the other execution's counts, as the next version
    assert store.states["psp"] == CircuitState(window_started=1000, successes=3, failures=1, version=4)
    assert store.reads == 3  # the first sync, then the read that lost and the one that won


def test_work_that_would_end_in_a_psp_call_is_not_started_while_it_is_open() -> None:
    store, clock, observer = MemoryStore(), Clock(), Observer()
    inner = Psp()
    psp = GuardedPsp(inner, breaker(store, clock, observer))
    psp.fail_fast()  # closed: go ahead
    inner.answers = ["down"] * 4
    for i in range(4):
        with pytest.raises(PspUnavailable):
            charge(psp, f"po_{i}")
    with pytest.raises(CircuitOpen, match="work not started"):
        psp.fail_fast()
    clock.now += 5
    psp.fail_fast()  # half-open: the call itself asks to probe
    assert observer.rejections == 1
