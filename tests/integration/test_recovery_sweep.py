"""The recovery sweep against the executor table of the template, in moto: a decided order stays on the
recovery index until it has been handed on; one failing PSP lookup blocks nothing and the stuck count is
still published; an executor attempt holds a lease the sweep respects, and a charge that lands after the
sweep decided FAILED is recorded as an orphan."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.common.events import ExecuteOrder, OrderCharged, OrderStatusChanged
from functions.executor import domain as executor
from functions.executor.store import DynamoExecutionStore
from functions.psp.models import ChargeResult
from functions.recovery import domain as recovery
from functions.recovery.settings import RecoverySettings
from local_stack.deploy import LocalCloud
from tests.integration.conftest import context
from tests.support.fakes import ChargeLookups, DyingPublisher, ProcessDied, Recorder

LEASE = timedelta(minutes=5)
# The executor queue's retries of a message: short here, so an order with no charge fails in these tests.
RETRY_WINDOW = timedelta(0)


def _order(po: str) -> ExecuteOrder:
    return ExecuteOrder(
        payment_id=f"pay_{po}",
        payment_order_id=po,
        seller_id="seller_r",
        buyer_id="buyer_r",
        amount=2500,
        currency="EUR",
        payment_method="tok_visa",
    )


@pytest.fixture
def orders(cloud: LocalCloud) -> DynamoExecutionStore:
    name = next(
        ref for logical_id, ref in cloud.names_of("AWS::DynamoDB::Table").items() if "ExecutorTable" in logical_id
    )
    return DynamoExecutionStore(name)


def _item(store: DynamoExecutionStore, po: str) -> dict[str, Any]:
    item: dict[str, Any] = (
        boto3.resource("dynamodb")
        .Table(store.table_name)
        .get_item(Key={"payment_order_id": po}, ConsistentRead=True)["Item"]
    )
    return item


def _plant_executing(store: DynamoExecutionStore, po: str, *, claimed: datetime) -> None:
    """An order as an executor attempt that died after claiming it at `claimed` left it."""
    order = _order(po)
    boto3.resource("dynamodb").Table(store.table_name).put_item(
        Item={
            "payment_order_id": po,
            "payment_id": order.payment_id,
            "seller_id": order.seller_id,
            "amount": order.amount,
            "currency": order.currency,
            "status": "EXECUTING",
            "attempts": 1,
            "claimed_at": claimed.isoformat(),
            "open_bucket": "OPEN",
            "open_since": claimed.isoformat(),
        }
    )


def _sweep(
    store: DynamoExecutionStore, psp: Any, *, now: datetime, wallet: Any = None, order_status: Any = None
) -> recovery.RecoveryReport:
    return recovery.recover_orders(
        now=now,
        resolve_after=timedelta(0),
        lease=LEASE,
        retry_window=RETRY_WINDOW,
        stuck_after=timedelta(hours=4),
        store=store,
        psp=psp,
        wallet=wallet if wallet is not None else Recorder(),
        order_status=order_status if order_status is not None else Recorder(),
        out_of_time=lambda: False,
    )


def test_a2_sweep_crash_after_deciding_still_hands_the_order_on(orders: DynamoExecutionStore) -> None:
    # Given an order whose executor died after claiming it; the PSP did charge it
    orders.claim(_order("po_sweep_crash"))
    psp = ChargeLookups({"po_sweep_crash": ChargeResult("succeeded", "ch_sweep_crash")})
    later = datetime.now(UTC) + LEASE + timedelta(seconds=1)

    # When a sweep decides it and its process dies before the hand-on reaches the wallet
    with pytest.raises(ProcessDied):
        _sweep(orders, psp, now=later, wallet=DyingPublisher())
    assert _item(orders, "po_sweep_crash")["status"] == "SUCCEEDED"
    assert _item(orders, "po_sweep_crash")["open_bucket"] == "HAND_ON"

    # Then the next sweep hands it on without asking the PSP again, and only then takes it off the index
    wallet, status = Recorder(), Recorder()
    report = _sweep(orders, psp, now=later + timedelta(minutes=5), wallet=wallet, order_status=status)
    assert report.handed_on_again == ["po_sweep_crash"]
    assert psp.asked == ["po_sweep_crash"]
    assert wallet.messages == [
        OrderCharged(
            payment_id="pay_po_sweep_crash",
            payment_order_id="po_sweep_crash",
            seller_id="seller_r",
            amount=2500,
            currency="EUR",
            psp_reference="ch_sweep_crash",
        )
    ]
    assert status.messages == [
        OrderStatusChanged(
            payment_id="pay_po_sweep_crash",
            payment_order_id="po_sweep_crash",
            status="SUCCEEDED",
            psp_reference="ch_sweep_crash",
        )
    ]
    item = _item(orders, "po_sweep_crash")
    assert ("open_bucket" in item, "open_since" in item) == (False, False)
    assert _sweep(orders, psp, now=later + timedelta(minutes=10)).handed_on_again == []


def test_a2_a_raising_lookup_does_not_block_the_sweep_and_orders_stuck_is_emitted(
    orders: DynamoExecutionStore,
    use_function_env: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given two orders left EXECUTING 30 hours ago (past the executor queue's 24 hours of retries): the PSP's
    # lookup fails for one, the other was never charged
    use_function_env("functions.recovery.handler.handler")
    handler = importlib.import_module("functions.recovery.handler")
    for po in ("po_lookup_fails", "po_never_charged"):
        _plant_executing(orders, po, claimed=datetime.now(UTC) - timedelta(hours=30))
    psp = ChargeLookups({}, broken=frozenset({"po_lookup_fails"}))
    wired = handler.RecoveryPorts(
        settings=RecoverySettings.from_env(),
        store=orders,
        psp=psp,
        wallet=Recorder(),
        order_status=Recorder(),
    )
    monkeypatch.setattr(handler, "ports", lambda: wired)
    capsys.readouterr()

    # When the scheduled sweep runs
    result = handler.handler({"resolve_after_seconds": 0}, context("recovery", timeout_seconds=300))

    # Then the other order is settled, the failure is reported, and the stuck count is published
    assert result == {
        "examined": 2,
        "resolved": {"FAILED": 1},
        "still_pending": 0,
        "leased": 0,
        "handed_on_again": 0,
        "errors": 1,
        "stuck": 1,
    }
    assert sorted(psp.asked) == ["po_lookup_fails", "po_never_charged"]
    assert (_item(orders, "po_never_charged")["status"], _item(orders, "po_lookup_fails")["status"]) == (
        "FAILED",
        "EXECUTING",
    )
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    values = {k: v for blob in emitted for k, v in blob.items() if k in ("OrdersStuck", "RecoveryErrors")}
    assert values == {"OrdersStuck": [1.0], "RecoveryErrors": [1.0]}


def test_a3_the_sweep_waits_for_the_lease_and_a_late_charge_is_recorded_as_an_orphan(
    orders: DynamoExecutionStore,
) -> None:
    # Given an executor attempt charging an order, slowly; the PSP has no record of the key meanwhile
    lookups = ChargeLookups({})
    wallet, status = Recorder(), Recorder()
    reports: list[recovery.RecoveryReport] = []

    class SlowPsp:
        def charge(self, *, idempotency_key: str, **_: object) -> ChargeResult:
            # When a sweep with no deadline runs while the attempt's lease is live...
            reports.append(_sweep(orders, lookups, now=datetime.now(UTC)))
            reports.append(_sweep(orders, lookups, now=datetime.now(UTC)))
            assert _item(orders, idempotency_key)["status"] == "EXECUTING"
            # ...and another after the lease expired
            reports.append(_sweep(orders, lookups, now=datetime.now(UTC) + LEASE + timedelta(seconds=1)))
            return ChargeResult("succeeded", "ch_late")

    execution = executor.execute_order(
        _order("po_lease"), store=orders, psp=SlowPsp(), wallet=wallet, order_status=status
    )

    # Then the sweeps under the lease left the order alone, without asking the PSP; the next decided FAILED
    assert [(r.leased, r.resolved) for r in reports] == [
        (["po_lease"], {}),
        (["po_lease"], {}),
        ([], {"FAILED": 1}),
    ]
    assert lookups.asked == ["po_lease"]
    # And the executor's late success is recorded as an orphan charge on the FAILED order, never credited
    item = _item(orders, "po_lease")
    assert (item["status"], item["failure_code"], item["orphan_psp_reference"]) == (
        "FAILED",
        "psp_no_charge",
        "ch_late",
    )
    assert datetime.fromisoformat(item["orphaned_at"]) <= datetime.now(UTC)
    assert (execution.status, execution.orphan_psp_reference) == ("FAILED", "ch_late")
    assert wallet.messages == []
    assert [m.status for m in status.messages] == ["FAILED"]  # type: ignore[attr-defined]
    assert "open_bucket" not in item
    # And recording it again changes nothing
    assert orders.record_orphan("po_lease", "ch_other").orphan_psp_reference == "ch_late"


def test_a3_a_sweep_decision_is_refused_once_a_new_attempt_claims_the_order(orders: DynamoExecutionStore) -> None:
    # Given an order whose attempt 1 lease has expired
    orders.claim(_order("po_reclaimed"))

    class ClaimedDuringLookup(ChargeLookups):
        def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None:
            orders.claim(_order("po_reclaimed"))  # a redelivered message starts attempt 2 meanwhile
            return super().charge_by_idempotency_key(idempotency_key)

    # When the sweep finds no charge and decides
    report = _sweep(orders, ClaimedDuringLookup({}), now=datetime.now(UTC) + LEASE + timedelta(seconds=1))

    # Then its decision, made for attempt 1, is refused: attempt 2 owns the order
    assert report.resolved == {}
    item = _item(orders, "po_reclaimed")
    assert (item["status"], item["attempts"], item["open_bucket"]) == ("EXECUTING", 2, "OPEN")
