"""Resolving refunds left PENDING: the PSP's verdict webhook never came, or its answer to our request was
lost (the executor crashed after the call, or its message dead-lettered). On a schedule, every refund
PENDING past a deadline is looked up at the PSP by its merchant reference (our refund id) - never
requested again from here - and settled through the same conditional transitions as a webhook.

- The PSP has the refund and decided: the verdict is applied and handed on (wallet debit, or release).
- The PSP says pending: the refund waits; past a second deadline it counts as stuck (alarmed).
- The PSP has no refund: the request never reached it. While the refund queue may still retry the
  message (its maximum age, from when it was last sent), the refund waits; after that the message is
  gone, so the sweep sends it again and notes when (the next re-send waits another window). The executor
  asks the PSP with idempotency key = refund_id, so a duplicate message is still one refund.
- One refund whose lookup fails is reported and skipped; the rest of the sweep runs. The sweep stops
  before its own timeout, so its report and metrics are always emitted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from functions.common.clock import iso
from functions.common.refund_events import ExecuteRefund
from functions.psp.models import RefundResult
from functions.refund.domain import Publisher, RefundStore, apply_verdict, hand_on
from functions.refund.models import Refund


class PendingRefunds(RefundStore, Protocol):
    def pending_since(self, *, updated_before: str) -> list[Refund]:
        """Refunds still PENDING whose last change is before the given ISO time, oldest first."""

    def mark_sent_again(self, refund_id: str) -> Refund:
        """Note (as its last change) that a refund the PSP was never asked about was sent to the executor
        again; a refund that has moved on is returned as it is."""


class RefundLookup(Protocol):
    def refund_by_reference(self, merchant_reference: str) -> RefundResult | None:
        """What the PSP did with the refund we asked for under this reference; None if it has none."""


@dataclass
class RefundRecoveryReport:
    examined: int = 0
    resolved: dict[str, int] = field(default_factory=dict)  # final status -> count
    still_pending: list[str] = field(default_factory=list)  # the PSP has not decided, or has no refund yet
    sent_again: list[str] = field(default_factory=list)  # not at the PSP and its message gone: re-sent
    errors: dict[str, str] = field(default_factory=dict)  # refund_id -> what went wrong
    stuck: list[str] = field(default_factory=list)  # still PENDING past the second deadline
    out_of_time: bool = False  # stopped early; the next sweep takes up the rest


def recover_refunds(
    *,
    now: datetime,
    resolve_after: timedelta,
    stuck_after: timedelta,
    retry_window: timedelta,
    store: PendingRefunds,
    psp: RefundLookup,
    refund_queue: Publisher,
    wallet: Publisher,
    out_of_time: Callable[[], bool] = lambda: False,
) -> RefundRecoveryReport:
    report = RefundRecoveryReport()
    for refund in store.pending_since(updated_before=iso(now - resolve_after)):
        if out_of_time():
            report.out_of_time = True
            break
        report.examined += 1
        try:
            settled = _recover(refund, now=now, retry_window=retry_window, psp=psp, store=store, queue=refund_queue)
            if settled is None:
                report.sent_again.append(refund.refund_id)
            else:
                # The refunds table's stream hands a decision on too, should the sweep die right here.
                hand_on(settled, wallet=wallet)
                if settled.status != "PENDING":
                    report.resolved[settled.status] = report.resolved.get(settled.status, 0) + 1
                    continue
            report.still_pending.append(refund.refund_id)
        except Exception as error:  # noqa: BLE001 - one refund must not block the others; it is reported
            report.errors[refund.refund_id] = f"{type(error).__name__}: {error}"
        if now - datetime.fromisoformat(refund.created_at) >= stuck_after:
            report.stuck.append(refund.refund_id)
    return report


def _recover(
    refund: Refund,
    *,
    now: datetime,
    retry_window: timedelta,
    psp: RefundLookup,
    store: PendingRefunds,
    queue: Publisher,
) -> Refund | None:
    """The refund as the PSP's verdict leaves it (as it was, if the PSP has none yet); None if it was sent to
    the executor again."""
    verdict = psp.refund_by_reference(refund.refund_id)
    if verdict is not None:
        return apply_verdict(
            refund.refund_id,
            verdict.status,
            psp_refund_id=verdict.psp_reference,
            failure_code=verdict.failure_code,
            store=store,
        )
    if refund.psp_status is not None or now - datetime.fromisoformat(refund.updated_at) < retry_window:
        return refund  # its message may still come (or the PSP has yet to list it)
    # Sent first, noted second: a crash between the two sends one more duplicate, never none.
    queue.publish(ExecuteRefund(refund_id=refund.refund_id, payment_order_id=refund.payment_order_id))
    store.mark_sent_again(refund.refund_id)
    return None
