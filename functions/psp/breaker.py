"""The PSP circuit breaker as one execution environment runs it: a local view of the shared state, the
outcomes seen since it was last shared, and the PSP client wrapped so that every call asks first.

The view follows the pure state machine (functions/psp/circuit.py) after each outcome, so an execution
reacts at once to what it sees itself; at most once every `sync_seconds`, when a call is about to be made,
its tally is merged into the shared copy (read, merge, conditional write; a lost race re-reads) and the
view becomes the shared result. A store that cannot be reached leaves the breaker on its local view: the
breaker protects the PSP, it is not needed to pay correctly."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

from functions.psp.circuit import Admission, CircuitPolicy, CircuitState, Tally, admission, merge
from functions.psp.models import ChargeResult, CircuitOpen, PspBusy, PspUnavailable, RefundResult

T = TypeVar("T")
RACES_PER_SYNC = 3


class CircuitStoreUnavailable(Exception):
    """The shared state could not be read or written."""


class CircuitStore(Protocol):
    def read(self, name: str) -> CircuitState:
        """The shared state (closed and empty if there is none)."""

    def replace(self, name: str, state: CircuitState, *, expected_version: int, now: float) -> bool:
        """Write `state` as version expected_version + 1 if the stored version is still `expected_version`."""


class CircuitObserver(Protocol):
    def synced(self, state: CircuitState, *, now: float) -> None:
        """The shared state, as just read or written."""

    def rejected(self) -> None:
        """A call failed fast."""

    def sync_failed(self, error: Exception) -> None:
        """The store could not be read or written; the breaker goes on with its local view."""


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        policy: CircuitPolicy,
        store: CircuitStore,
        *,
        clock: Callable[[], float],
        observer: CircuitObserver,
        sync_seconds: float = 1.0,
    ) -> None:
        self.name = name
        self.policy = policy
        self._store = store
        self._clock = clock
        self._observer = observer
        self._sync_seconds = sync_seconds
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._view = CircuitState()
        self._pending = Tally()
        self._pending_at = 0.0  # when the latest outcome in the tally was seen
        self._last_sync: float | None = None
        self._probe_in_flight = False

    @property
    def view(self) -> CircuitState:
        with self._lock:
            return self._view

    def check(self) -> None:
        """Raise CircuitOpen if a call now would fail fast; a half-open circuit passes (the call itself
        asks for a probe). For callers that must not start work the PSP call would end."""
        self._sync_if_due()
        now = self._clock()
        with self._lock:
            rejected = admission(self._view, now=now, policy=self.policy) == "reject"
        if rejected:
            self._observer.rejected()
            raise CircuitOpen(f"the PSP circuit {self.name!r} is open: work not started")

    def admit(self) -> Admission:
        """Let a call through (as a call or a probe), or raise CircuitOpen."""
        self._sync_if_due()
        now = self._clock()
        with self._lock:
            admitted = admission(self._view, now=now, policy=self.policy)
            if admitted == "probe" and self._probe_in_flight:
                admitted = "reject"  # one probe at a time from this execution
            if admitted == "probe":
                self._probe_in_flight = True
        if admitted == "reject":
            self._observer.rejected()
            raise CircuitOpen(f"the PSP circuit {self.name!r} is open: call not made")
        return admitted

    def record(self, admitted: Admission, *, ok: bool) -> None:
        """The outcome of an admitted call."""
        if admitted == "probe":
            outcome = Tally(probe_successes=1) if ok else Tally(probe_failures=1)
        else:
            outcome = Tally(successes=1) if ok else Tally(failures=1)
        now = self._clock()
        with self._lock:
            if admitted == "probe":
                self._probe_in_flight = False
            self._pending = self._pending + outcome
            self._pending_at = now
            self._view = merge(self._view, outcome, now=now, policy=self.policy)

    def abandon(self, admitted: Admission) -> None:
        """An admitted call that ended without an answer about the PSP (our own error): count nothing."""
        if admitted == "probe":
            with self._lock:
                self._probe_in_flight = False

    def _sync_if_due(self) -> None:
        now = self._clock()
        with self._lock:
            if self._last_sync is not None and now - self._last_sync < self._sync_seconds:
                return
        if not self._sync_lock.acquire(blocking=False):
            return  # another thread of this execution is syncing
        try:
            with self._lock:
                if self._last_sync is not None and now - self._last_sync < self._sync_seconds:
                    return
                self._last_sync = now
                tally, seen_at = self._pending, self._pending_at
                self._pending = Tally()
            try:
                # Merged as of when the outcomes were seen: a circuit this execution saw open a while ago
                # has been cooling down since then, not since now.
                shared = self._share(tally, seen_at)
            except CircuitStoreUnavailable as error:
                with self._lock:
                    self._pending = tally + self._pending  # shared next time
                self._observer.sync_failed(error)
                return
            if shared is None:  # lost every race this time: keep the tally for the next sync
                with self._lock:
                    self._pending = tally + self._pending
                return
            with self._lock:
                # The shared state, plus what this execution saw while it was being shared.
                self._view = merge(shared, self._pending, now=self._clock(), policy=self.policy)
            self._observer.synced(shared, now=now)
        finally:
            self._sync_lock.release()

    def _share(self, tally: Tally, seen_at: float) -> CircuitState | None:
        for _ in range(RACES_PER_SYNC):
            shared = self._store.read(self.name)
            if tally.empty:
                return shared
            merged = merge(shared, tally, now=seen_at, policy=self.policy)
            if self._store.replace(self.name, merged, expected_version=shared.version, now=self._clock()):
                return merged.model_copy(update={"version": shared.version + 1})
        return None


class BreakerPsp(Protocol):
    def charge(
        self, *, idempotency_key: str, amount: int, currency: str, payment_method: str, merchant_reference: str
    ) -> ChargeResult: ...

    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None: ...

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int) -> RefundResult: ...


class GuardedCalls:
    """Calls to a payment service behind its circuit breaker: PspUnavailable (the service gave no answer)
    counts as a failure; an answer (a charge, a decline, a refusal) as a success; a call the breaker refuses
    raises CircuitOpen (a PspUnavailable)."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker

    def fail_fast(self) -> None:
        """Raise CircuitOpen now if the circuit is open, before any work the call would end."""
        self._breaker.check()

    def _call(self, call: Callable[[], T]) -> T:
        admitted = self._breaker.admit()
        try:
            result = call()
        except PspBusy:
            self._breaker.abandon(admitted)  # it answered: a duplicate in flight is not an outage
            raise
        except PspUnavailable:
            self._breaker.record(admitted, ok=False)
            raise
        except BaseException:
            self._breaker.abandon(admitted)
            raise
        self._breaker.record(admitted, ok=True)
        return result


class GuardedPsp(GuardedCalls):
    """The PSP client behind the circuit breaker."""

    def __init__(self, psp: BreakerPsp, breaker: CircuitBreaker) -> None:
        super().__init__(breaker)
        self._psp = psp

    def charge(
        self, *, idempotency_key: str, amount: int, currency: str, payment_method: str, merchant_reference: str
    ) -> ChargeResult:
        return self._call(
            lambda: self._psp.charge(
                idempotency_key=idempotency_key,
                amount=amount,
                currency=currency,
                payment_method=payment_method,
                merchant_reference=merchant_reference,
            )
        )

    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None:
        return self._call(lambda: self._psp.charge_by_idempotency_key(idempotency_key))

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int) -> RefundResult:
        return self._call(
            lambda: self._psp.refund(idempotency_key=idempotency_key, charge_reference=charge_reference, amount=amount)
        )
