"""Resolving orders the PSP left undecided: EXECUTING (the charge's response was lost, the worker
died) or PENDING (the settling webhook never came). On a schedule, every order open past a deadline is
looked up at the PSP by its idempotency key - never charged again - and settled with what the PSP
says. Orders still open past a second deadline are counted as stuck; an alarm watches that metric."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from functions.common.clock import iso
from functions.executor.domain import OrderExecution, Publisher, ResolutionStore, resolve_order
from functions.psp.models import ChargeResult


class OpenOrders(ResolutionStore, Protocol):
    def open_orders(self, *, opened_before: str) -> list[OrderExecution]: ...


class ChargeLookup(Protocol):
    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None: ...


@dataclass
class RecoveryReport:
    examined: int = 0
    resolved: dict[str, int] = field(default_factory=dict)  # final status -> count
    still_pending: int = 0
    stuck: list[str] = field(default_factory=list)  # payment_order_ids open past the second deadline


def recover_orders(
    *,
    now: datetime,
    resolve_after: timedelta,
    stuck_after: timedelta,
    store: OpenOrders,
    psp: ChargeLookup,
    wallet: Publisher,
    order_status: Publisher,
) -> RecoveryReport:
    report = RecoveryReport()
    stuck_before = iso(now - stuck_after)
    for execution in store.open_orders(opened_before=iso(now - resolve_after)):
        report.examined += 1
        found = psp.charge_by_idempotency_key(execution.payment_order_id)
        if found is None:
            # The PSP never saw the key: the charge was never made, and past the deadline no attempt is
            # alive to make it. Fail the order instead of charging it now.
            found = ChargeResult(status="failed", psp_reference=None, failure_code="psp_no_charge")
        resolved = resolve_order(execution, found, store=store, wallet=wallet, order_status=order_status)
        if resolved.status in ("SUCCEEDED", "FAILED"):
            report.resolved[resolved.status] = report.resolved.get(resolved.status, 0) + 1
            continue
        report.still_pending += 1
        if (execution.open_since or "") < stuck_before:
            report.stuck.append(execution.payment_order_id)
    return report
