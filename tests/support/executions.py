"""An in-memory executor order table with the contract of functions.executor.store.DynamoExecutionStore:
claims count attempts and take a lease, decisions are conditional (on the state, and on the attempt when
given), a decided order waits on the recovery index until it is handed on, orphan charges are recorded
once. The integration tests hold the DynamoDB store to the same behaviour."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from functions.common.events import ExecuteOrder, OrderStatus
from functions.executor.domain import OrderExecution, target_status
from functions.psp.models import ChargeResult

OPEN, HAND_ON = "OPEN", "HAND_ON"


class MemoryExecutionStore:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.executions: dict[str, OrderExecution] = {}
        self.index: dict[str, str] = {}  # payment_order_id -> its recovery index bucket
        self.handed_on: list[str] = []

    def add(self, execution: OrderExecution, bucket: str | None = OPEN) -> None:
        """Plant an order as a worker left it."""
        self.executions[execution.payment_order_id] = execution
        if bucket is not None:
            self.index[execution.payment_order_id] = bucket

    def claim(self, order: ExecuteOrder) -> OrderExecution:
        current = self.executions.get(order.payment_order_id)
        if current is not None and current.status not in ("NOT_STARTED", "EXECUTING"):
            return current
        now = self.clock().isoformat()
        claimed = OrderExecution(
            payment_order_id=order.payment_order_id,
            payment_id=order.payment_id,
            seller_id=order.seller_id,
            amount=order.amount,
            currency=order.currency,
            status="EXECUTING",
            attempts=(current.attempts if current else 0) + 1,
            claimed_at=now,
            open_since=(current.open_since if current and current.open_since else now),
        )
        self.add(claimed)
        return claimed

    def decide(
        self, payment_order_id: str, *, expected: OrderStatus, result: ChargeResult, attempt: int | None = None
    ) -> OrderExecution:
        current = self.executions[payment_order_id]
        if current.status != expected or (attempt is not None and current.attempts != attempt):
            return current
        decided = current.model_copy(
            update={
                "status": target_status(result),
                "psp_reference": result.psp_reference,
                "failure_code": result.failure_code,
            }
        )
        self.executions[payment_order_id] = decided
        if decided.status in ("SUCCEEDED", "FAILED"):
            self.index[payment_order_id] = HAND_ON
        return decided

    def open_orders(self, *, opened_before: str) -> list[OrderExecution]:
        return self._indexed(OPEN, opened_before)

    def awaiting_hand_on(self, *, opened_before: str) -> list[OrderExecution]:
        return self._indexed(HAND_ON, opened_before)

    def mark_handed_on(self, payment_order_id: str) -> None:
        if self.index.get(payment_order_id) == HAND_ON:
            del self.index[payment_order_id]
            self.handed_on.append(payment_order_id)

    def record_orphan(self, payment_order_id: str, psp_reference: str) -> OrderExecution:
        current = self.executions[payment_order_id]
        if current.status != "FAILED" or current.orphan_psp_reference is not None:
            return current
        orphaned = current.model_copy(
            update={"orphan_psp_reference": psp_reference, "orphaned_at": self.clock().isoformat()}
        )
        self.executions[payment_order_id] = orphaned
        return orphaned

    def find(self, payment_order_id: str) -> OrderExecution | None:
        return self.executions.get(payment_order_id)

    def _indexed(self, bucket: str, opened_before: str) -> list[OrderExecution]:
        found = [
            self.executions[po]
            for po, at in self.index.items()
            if at == bucket and (self.executions[po].open_since or "") < opened_before
        ]
        return sorted(found, key=lambda e: e.open_since or "")
