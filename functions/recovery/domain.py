"""Resolving orders the PSP left undecided: EXECUTING (the charge's response was lost, the worker
died) or PENDING (the settling webhook never came). On a schedule, every order open past a deadline is
looked up at the PSP by its idempotency key - never charged again - and settled with what the PSP
says. Orders still open past a second deadline are counted as stuck; an alarm watches that metric.

Three rules keep the sweep from losing or inventing money:
- An EXECUTING order is only decided once its attempt's lease has expired (claim time + lease), and the
  decision is conditional on that attempt: an attempt that claims the order meanwhile wins.
- A decision is handed on (wallet, payment status) before the order leaves the recovery index, and every
  sweep first re-sends the hand-offs of orders decided but not handed on (the receivers are idempotent).
- One order that fails (its lookup raises, say) is reported and skipped; the rest of the sweep runs.
- "The PSP has no charge" fails an order only once its executor message can no longer be retried (older
  than the queue's maximum message age, plus the lease): in a long PSP brownout the message is still
  backing off, and its next attempt may charge. Until then the order waits, and counts as stuck.
The sweep stops before its own timeout (`out_of_time`), so its report and metrics are always emitted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from functions.common.clock import iso
from functions.executor.domain import NO_CHARGE, OrderExecution, Publisher, ResolutionStore, hand_on, resolve_order
from functions.psp.models import ChargeResult


class OpenOrders(ResolutionStore, Protocol):
    def open_orders(self, *, opened_before: str) -> list[OrderExecution]:
        """Orders still EXECUTING or PENDING that opened before the given ISO time."""

    def awaiting_hand_on(self, *, opened_before: str) -> list[OrderExecution]:
        """Orders decided but not yet handed on, that opened before the given ISO time."""


class ChargeLookup(Protocol):
    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None: ...


@dataclass
class RecoveryReport:
    examined: int = 0
    resolved: dict[str, int] = field(default_factory=dict)  # final status -> count
    still_pending: int = 0
    leased: list[str] = field(default_factory=list)  # left to a live attempt
    handed_on_again: list[str] = field(default_factory=list)  # decided earlier, hand-offs re-sent now
    awaiting_retry: list[str] = field(default_factory=list)  # no charge yet; the executor may still retry
    errors: dict[str, str] = field(default_factory=dict)  # payment_order_id -> what went wrong
    out_of_time: bool = False  # stopped early; the next sweep takes up the rest
    stuck: list[str] = field(default_factory=list)  # payment_order_ids open past the second deadline


def lease_expired(execution: OrderExecution, *, now: datetime, lease: timedelta) -> bool:
    """Whether no attempt can still be charging the order. A PENDING order's attempt ended when it decided
    PENDING (nothing claims a PENDING order again); an EXECUTING one's runs until claim time + lease."""
    if execution.status != "EXECUTING" or execution.claimed_at is None:
        return True
    return datetime.fromisoformat(execution.claimed_at) + lease <= now


def _settle(
    execution: OrderExecution,
    *,
    retried_before: str,
    store: OpenOrders,
    psp: ChargeLookup,
    wallet: Publisher,
    order_status: Publisher,
) -> OrderExecution:
    found = psp.charge_by_idempotency_key(execution.payment_order_id)
    if found is None:
        if (execution.open_since or "") >= retried_before:
            return execution  # the executor's message may still be backing off: its next attempt charges
        # The PSP never saw the key, no attempt is alive and no retry is left to make the charge. Fail the
        # order instead of charging it now (an attempt that claims it meanwhile refuses this).
        found = ChargeResult(status="failed", psp_reference=None, failure_code=NO_CHARGE)
    if found.status == "pending":
        return execution
    return resolve_order(
        execution, found, store=store, wallet=wallet, order_status=order_status, attempt=execution.attempts
    )


def recover_orders(
    *,
    now: datetime,
    resolve_after: timedelta,
    lease: timedelta,
    retry_window: timedelta,
    stuck_after: timedelta,
    store: OpenOrders,
    psp: ChargeLookup,
    wallet: Publisher,
    order_status: Publisher,
    out_of_time: Callable[[], bool],
) -> RecoveryReport:
    """`retry_window`: how long the executor's queue retries an order's message (its maximum age)."""
    report = RecoveryReport()
    opened_before = iso(now - resolve_after)
    stuck_before = iso(now - stuck_after)
    retried_before = iso(now - retry_window - lease)
    # First the decisions whose hand-on a crash (of a sweep, a worker) interrupted.
    for decided in store.awaiting_hand_on(opened_before=opened_before):
        if out_of_time():
            report.out_of_time = True
            return report
        try:
            hand_on(decided, wallet=wallet, order_status=order_status)
            store.mark_handed_on(decided.payment_order_id)
        except Exception as error:  # noqa: BLE001 - reported per order: one failure must not block the rest
            report.errors[decided.payment_order_id] = f"{type(error).__name__}: {error}"
            if (decided.open_since or "") < stuck_before:
                report.stuck.append(decided.payment_order_id)
            continue
        report.handed_on_again.append(decided.payment_order_id)
    for execution in store.open_orders(opened_before=opened_before):
        if out_of_time():
            report.out_of_time = True
            return report
        report.examined += 1
        if not lease_expired(execution, now=now, lease=lease):
            report.leased.append(execution.payment_order_id)
        else:
            try:
                outcome = _settle(
                    execution,
                    retried_before=retried_before,
                    store=store,
                    psp=psp,
                    wallet=wallet,
                    order_status=order_status,
                )
            except Exception as error:  # noqa: BLE001 - reported per order: one failure must not block the rest
                report.errors[execution.payment_order_id] = f"{type(error).__name__}: {error}"
            else:
                if outcome.status in ("SUCCEEDED", "FAILED"):
                    report.resolved[outcome.status] = report.resolved.get(outcome.status, 0) + 1
                    continue
                if outcome.status == "EXECUTING":
                    report.awaiting_retry.append(execution.payment_order_id)
                else:
                    report.still_pending += 1
        if (execution.open_since or "") < stuck_before:
            report.stuck.append(execution.payment_order_id)
    return report
