"""Resolving orders the PSP left undecided: EXECUTING (the charge's response was lost, the worker
died) or PENDING (the settling webhook never came). On a schedule, every order open past a deadline is
looked up at the PSP by its idempotency key - never charged again - and settled with what the PSP
says. Orders still open past a second deadline are counted as stuck; an alarm watches that metric."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import Field

from functions.common.settings import FunctionSettings
from functions.executor.domain import OrderExecution, Publisher, ResolutionStore, resolve_order
from functions.executor.psp import ChargeResult

# AWS's worst case for a live attempt at an order: 5 receives x 180 s visibility. Past it, nothing but
# this job will touch an EXECUTING order, so "no charge at the PSP" really means "never charged".
DEFAULT_RESOLVE_AFTER_SECONDS = 1800
DEFAULT_STUCK_AFTER_SECONDS = 4 * 3600


class RecoverySettings(FunctionSettings):
    orders_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    wallet_queue_url: str = Field(alias="WALLET_QUEUE_URL")
    order_status_queue_url: str = Field(alias="ORDER_STATUS_QUEUE_URL")
    psp_base_url: str = Field(alias="PSP_BASE_URL")
    psp_timeout_seconds: float = Field(default=2.0, alias="PSP_TIMEOUT_SECONDS", gt=0)
    psp_max_retries: int = Field(default=4, alias="PSP_MAX_RETRIES", ge=0)
    resolve_after_seconds: int = Field(default=DEFAULT_RESOLVE_AFTER_SECONDS, alias="RESOLVE_AFTER_SECONDS", ge=0)
    stuck_after_seconds: int = Field(default=DEFAULT_STUCK_AFTER_SECONDS, alias="STUCK_AFTER_SECONDS", ge=0)


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


def _iso(moment: datetime) -> str:
    return moment.isoformat()


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
    stuck_before = _iso(now - stuck_after)
    for execution in store.open_orders(opened_before=_iso(now - resolve_after)):
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
