"""The recovery sweep with in-memory ports: orders settled from the PSP's record, never charged again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from functions.executor.domain import OrderExecution
from functions.psp.models import ChargeResult
from functions.recovery import domain as recovery


class Publisher:
    def __init__(self) -> None:
        self.messages: list[BaseModel] = []

    def publish(self, message: BaseModel) -> None:
        self.messages.append(message)


class Orders:
    def __init__(self, executions: list[OrderExecution]) -> None:
        self.executions = {e.payment_order_id: e for e in executions}

    def open_orders(self, *, opened_before: str) -> list[OrderExecution]:
        return [
            e
            for e in self.executions.values()
            if e.status in ("EXECUTING", "PENDING") and (e.open_since or "") < opened_before
        ]

    def decide(self, payment_order_id: str, *, expected: Any, result: ChargeResult) -> OrderExecution:
        current = self.executions[payment_order_id]
        if current.status != expected:
            return current
        status = {"succeeded": "SUCCEEDED", "failed": "FAILED", "pending": "PENDING"}[result.status]
        updated = current.model_copy(
            update={"status": status, "psp_reference": result.psp_reference, "failure_code": result.failure_code}
        )
        self.executions[payment_order_id] = updated
        return updated


class Psp:
    def __init__(self, known: dict[str, ChargeResult]) -> None:
        self.known = known
        self.lookups: list[str] = []

    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None:
        self.lookups.append(idempotency_key)
        return self.known.get(idempotency_key)


def _order(po: str, status: Any, opened: datetime) -> OrderExecution:
    return OrderExecution(
        payment_order_id=po,
        payment_id="pay",
        seller_id="s",
        amount=100,
        currency="USD",
        status=status,
        open_since=opened.isoformat(),
    )


def test_sweep_settles_from_the_psp_record_fails_the_unknown_and_counts_the_stuck() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    orders = Orders(
        [
            _order("po_settled", "PENDING", now - timedelta(hours=1)),
            _order("po_never_sent", "EXECUTING", now - timedelta(hours=1)),
            _order("po_still_pending", "PENDING", now - timedelta(hours=5)),
            _order("po_recent", "EXECUTING", now - timedelta(minutes=5)),
        ]
    )
    psp = Psp(
        {
            "po_settled": ChargeResult("succeeded", "ch_1"),
            "po_still_pending": ChargeResult("pending", "ch_2"),
            "po_recent": ChargeResult("succeeded", "ch_3"),
        }
    )
    wallet, status = Publisher(), Publisher()

    report = recovery.recover_orders(
        now=now,
        resolve_after=timedelta(minutes=30),
        stuck_after=timedelta(hours=4),
        store=orders,
        psp=psp,
        wallet=wallet,
        order_status=status,
    )

    assert (report.examined, report.resolved, report.still_pending, report.stuck) == (
        3,
        {"SUCCEEDED": 1, "FAILED": 1},
        1,
        ["po_still_pending"],
    )
    assert sorted(psp.lookups) == ["po_never_sent", "po_settled", "po_still_pending"]
    assert orders.executions["po_never_sent"].failure_code == "psp_no_charge"
    assert orders.executions["po_recent"].status == "EXECUTING"  # too young: its worker may be alive
    assert [m.payment_order_id for m in wallet.messages] == ["po_settled"]  # type: ignore[attr-defined]
