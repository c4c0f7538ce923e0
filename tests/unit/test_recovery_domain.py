"""The recovery sweep with in-memory ports: orders settled from the PSP's record, never charged again; a
decision is handed on even if the sweep dies after making it; one failing lookup blocks nothing; an order
whose attempt still holds its lease is left to that attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.common.events import ExecuteOrder, OrderCharged, OrderStatusChanged
from functions.executor import domain as executor
from functions.executor.domain import OrderExecution
from functions.psp.models import ChargeResult
from functions.recovery import domain as recovery
from tests.support.executions import HAND_ON, MemoryExecutionStore
from tests.support.fakes import ChargeLookups, DyingPublisher, ProcessDied, Recorder

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
LEASE = timedelta(minutes=5)
# The executor queue's retries of a message: short here, so an order with no charge fails in these tests.
RETRY_WINDOW = timedelta(0)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _order(po: str, status: Any, opened: datetime) -> OrderExecution:
    return OrderExecution(
        payment_order_id=po,
        payment_id="pay",
        seller_id="s",
        amount=100,
        currency="USD",
        status=status,
        attempts=1,
        open_since=opened.isoformat(),
    )


def _sweep(
    store: MemoryExecutionStore,
    psp: ChargeLookups,
    *,
    now: datetime = NOW,
    resolve_after: timedelta = timedelta(minutes=30),
    wallet: Any = None,
    order_status: Any = None,
) -> recovery.RecoveryReport:
    return recovery.recover_orders(
        now=now,
        resolve_after=resolve_after,
        lease=LEASE,
        retry_window=RETRY_WINDOW,
        stuck_after=timedelta(hours=4),
        store=store,
        psp=psp,
        wallet=wallet if wallet is not None else Recorder(),
        order_status=order_status if order_status is not None else Recorder(),
        out_of_time=lambda: False,
    )


def test_sweep_settles_from_the_psp_record_fails_the_unknown_and_counts_the_stuck() -> None:
    now = NOW
    orders = MemoryExecutionStore(Clock(now))
    for order in (
        _order("po_settled", "PENDING", now - timedelta(hours=1)),
        _order("po_never_sent", "EXECUTING", now - timedelta(hours=1)),
        _order("po_still_pending", "PENDING", now - timedelta(hours=5)),
        _order("po_recent", "EXECUTING", now - timedelta(minutes=5)),
    ):
        orders.add(order)
    psp = ChargeLookups(
        {
            "po_settled": ChargeResult("succeeded", "ch_1"),
            "po_still_pending": ChargeResult("pending", "ch_2"),
            "po_recent": ChargeResult("succeeded", "ch_3"),
        }
    )
    wallet, status = Recorder(), Recorder()

    report = _sweep(orders, psp, now=now, wallet=wallet, order_status=status)

    assert (report.examined, report.resolved, report.still_pending, report.stuck) == (
        3,
        {"SUCCEEDED": 1, "FAILED": 1},
        1,
        ["po_still_pending"],
    )
    assert sorted(psp.asked) == ["po_never_sent", "po_settled", "po_still_pending"]
    assert orders.executions["po_never_sent"].failure_code == "psp_no_charge"
    assert orders.executions["po_recent"].status == "EXECUTING"  # too young: its worker may be alive
    assert [m.payment_order_id for m in wallet.messages] == ["po_settled"]  # type: ignore[attr-defined]
    # Both decisions were handed on, so neither waits on the index any more
    assert sorted(orders.handed_on) == ["po_never_sent", "po_settled"]


def test_a2_sweep_crash_after_deciding_still_hands_the_order_on() -> None:
    # Given an order left EXECUTING an hour ago, which the PSP did charge
    orders = MemoryExecutionStore(Clock(NOW))
    orders.add(_order("po_charged", "EXECUTING", NOW - timedelta(hours=1)))
    psp = ChargeLookups({"po_charged": ChargeResult("succeeded", "ch_1")})

    # When a sweep decides it and its process dies before the hand-on reaches the wallet
    with pytest.raises(ProcessDied):
        _sweep(orders, psp, wallet=DyingPublisher())
    assert orders.executions["po_charged"].status == "SUCCEEDED"

    # Then the next sweep hands it on (without asking the PSP again) and only then takes it off the index
    wallet, status = Recorder(), Recorder()
    report = _sweep(orders, psp, now=NOW + timedelta(minutes=5), wallet=wallet, order_status=status)
    assert report.handed_on_again == ["po_charged"]
    assert psp.asked == ["po_charged"]
    assert wallet.messages == [
        OrderCharged(
            payment_id="pay",
            payment_order_id="po_charged",
            seller_id="s",
            amount=100,
            currency="USD",
            psp_reference="ch_1",
        )
    ]
    assert status.messages == [
        OrderStatusChanged(payment_id="pay", payment_order_id="po_charged", status="SUCCEEDED", psp_reference="ch_1")
    ]
    assert orders.handed_on == ["po_charged"] and "po_charged" not in orders.index
    # And a third sweep has nothing left to send
    assert _sweep(orders, psp, now=NOW + timedelta(minutes=10)).handed_on_again == []


def test_a2_a_raising_lookup_does_not_block_the_rest_of_the_sweep() -> None:
    # Given three orders past the deadline; the PSP's lookup fails for the oldest, open past the stuck deadline
    orders = MemoryExecutionStore(Clock(NOW))
    orders.add(_order("po_lookup_fails", "EXECUTING", NOW - timedelta(hours=5)))
    orders.add(_order("po_charged", "PENDING", NOW - timedelta(hours=2)))
    orders.add(_order("po_never_sent", "EXECUTING", NOW - timedelta(hours=1)))
    psp = ChargeLookups({"po_charged": ChargeResult("succeeded", "ch_1")}, broken=frozenset({"po_lookup_fails"}))

    # When the sweep runs
    report = _sweep(orders, psp)

    # Then the others are settled, the failure is reported, and the failing order still counts as stuck
    assert psp.asked == ["po_lookup_fails", "po_charged", "po_never_sent"]
    assert report.errors == {"po_lookup_fails": "PspUnavailable: PSP answered 503 to a charge lookup"}
    assert report.resolved == {"SUCCEEDED": 1, "FAILED": 1}
    assert report.stuck == ["po_lookup_fails"]
    assert orders.executions["po_lookup_fails"].status == "EXECUTING"
    assert orders.index["po_lookup_fails"] == "OPEN"


ORDER = ExecuteOrder(
    payment_id="pay",
    payment_order_id="po_race",
    seller_id="s",
    buyer_id="b",
    amount=100,
    currency="USD",
    payment_method="tok_visa",
)


class ChargingWhileSweeping:
    """A PSP whose charge is slow: sweeps run while the executor's attempt is charging, then it succeeds."""

    def __init__(self, sweeps: Any) -> None:
        self.sweeps = sweeps
        self.reports: list[recovery.RecoveryReport] = []

    def charge(self, *, idempotency_key: str, **_: object) -> ChargeResult:
        self.reports = self.sweeps()
        return ChargeResult("succeeded", "ch_late")


def test_a3_sweep_waits_for_the_lease_and_a_late_charge_is_recorded_as_an_orphan() -> None:
    # Given an order whose first attempt died long ago, redriven from the DLQ: a new attempt claims it now
    clock = Clock(NOW)
    orders = MemoryExecutionStore(clock)
    orders.add(_order("po_race", "EXECUTING", NOW - timedelta(hours=2)))
    lookups = ChargeLookups({})  # the PSP has no charge for the key yet: the new attempt's request is in flight
    wallet, status = Recorder(), Recorder()

    def sweeps() -> list[recovery.RecoveryReport]:
        # When a sweep with no deadline runs while the attempt's lease is live, and another after it expired
        live = _sweep(orders, lookups, now=NOW + timedelta(seconds=1), resolve_after=timedelta(0))
        decided_before = orders.executions["po_race"].status
        expired = _sweep(orders, lookups, now=NOW + LEASE + timedelta(seconds=1), resolve_after=timedelta(0))
        assert decided_before == "EXECUTING"
        return [live, expired]

    psp = ChargingWhileSweeping(sweeps)
    execution = executor.execute_order(ORDER, store=orders, psp=psp, wallet=wallet, order_status=status)

    # Then the first sweep left the leased order alone, without even asking the PSP
    live, expired = psp.reports
    assert (live.leased, live.resolved, live.examined) == (["po_race"], {}, 1)
    # And the second decided it FAILED (no charge at the PSP)
    assert (expired.leased, expired.resolved) == ([], {"FAILED": 1})
    assert lookups.asked == ["po_race"]
    # And the executor's charge that then succeeded is recorded as an orphan on the FAILED order, never credited
    assert (execution.status, execution.failure_code) == ("FAILED", "psp_no_charge")
    assert (execution.orphan_psp_reference, execution.orphaned_at) == ("ch_late", NOW.isoformat())
    assert orders.executions["po_race"] == execution
    assert wallet.messages == []
    assert [m.status for m in status.messages] == ["FAILED"]  # type: ignore[attr-defined]
    assert "po_race" not in orders.index


def test_a3_a_sweep_decision_is_refused_once_a_new_attempt_claims_the_order() -> None:
    # Given an order whose lease has expired
    orders = MemoryExecutionStore(Clock(NOW))
    orders.add(_order("po_race", "EXECUTING", NOW - timedelta(hours=1)))

    class ClaimedDuringLookup(ChargeLookups):
        def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None:
            # While the sweep asks the PSP, a redelivered message starts attempt 2
            orders.claim(ORDER)
            return super().charge_by_idempotency_key(idempotency_key)

    # When the sweep finds no charge and decides
    report = _sweep(orders, ClaimedDuringLookup({}))

    # Then its decision, made for attempt 1, is refused: attempt 2 owns the order
    assert report.resolved == {}
    assert (orders.executions["po_race"].status, orders.executions["po_race"].attempts) == ("EXECUTING", 2)
    assert orders.index["po_race"] == "OPEN"
    assert HAND_ON not in orders.index.values()


def _sweep_with(
    orders: MemoryExecutionStore, lookups: ChargeLookups, *, now: datetime, out_of_time: Any = lambda: False
) -> recovery.RecoveryReport:
    return recovery.recover_orders(
        now=now,
        resolve_after=timedelta(minutes=30),
        lease=LEASE,
        retry_window=timedelta(hours=24),
        stuck_after=timedelta(hours=4),
        store=orders,
        psp=lookups,
        wallet=Recorder(),
        order_status=Recorder(),
        out_of_time=out_of_time,
    )


def test_an_order_the_psp_has_no_charge_for_waits_while_its_message_may_still_be_retried() -> None:
    # Given an order claimed 2 hours ago whose charge the PSP never saw: it was down (a long brownout),
    # and the executor's message is still backing off (the queue retries it for 24 hours)
    orders = MemoryExecutionStore(Clock(NOW))
    orders.add(_order("po_brownout", "EXECUTING", NOW - timedelta(hours=2)))
    lookups = ChargeLookups({})

    # When the sweep runs, its lease long expired
    report = _sweep_with(orders, lookups, now=NOW)

    # Then the order is not failed: the next retry may charge it. It waits, and counts as open
    assert (report.resolved, report.awaiting_retry, report.still_pending) == ({}, ["po_brownout"], 0)
    assert orders.executions["po_brownout"].status == "EXECUTING"
    assert orders.index["po_brownout"] == "OPEN"

    # And once the message can no longer be retried (24 h plus the lease after the order opened)
    later = NOW - timedelta(hours=2) + timedelta(hours=24) + LEASE + timedelta(seconds=1)
    report = _sweep_with(orders, lookups, now=later)

    # Then the order fails with psp_no_charge, and the PSP was asked twice, never charged
    assert (report.resolved, report.awaiting_retry) == ({"FAILED": 1}, [])
    assert (orders.executions["po_brownout"].status, orders.executions["po_brownout"].failure_code) == (
        "FAILED",
        "psp_no_charge",
    )
    assert lookups.asked == ["po_brownout", "po_brownout"]


def test_a_sweep_out_of_time_stops_and_reports_what_it_did() -> None:
    orders = MemoryExecutionStore(Clock(NOW))
    for n in range(3):
        orders.add(_order(f"po_{n}", "PENDING", NOW - timedelta(hours=1, minutes=n)))
    lookups = ChargeLookups({f"po_{n}": ChargeResult("succeeded", f"ch_{n}") for n in range(3)})
    checks: list[int] = []

    def out_of_time() -> bool:
        checks.append(1)
        return len(checks) > 1  # time for one order only

    report = _sweep_with(orders, lookups, now=NOW, out_of_time=out_of_time)

    assert (report.out_of_time, report.examined, report.resolved) == (True, 1, {"SUCCEEDED": 1})
    assert lookups.asked == ["po_2"]  # the oldest first
    assert sorted(po for po, bucket in orders.index.items() if bucket == "OPEN") == ["po_0", "po_1"]
