"""The money auditor's refund check: for every order of the window that has refunds on our side, what the
PSP holds as refunded of its charge (pending and succeeded refunds) equals what our refunds hold of it.

A refund just stored and not yet at the PSP, or just failed at the PSP before its webhook landed, makes the
two differ for a moment: a differing order is read again after a pause before it is reported."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from functions.auditor.models import Finding, OrderRecord

# Applies a per-order check to each order and yields the results in order: `map`, or a thread pool's.
Each = Callable[[Callable[[OrderRecord], Any], Iterable[OrderRecord]], Iterator[Any]]


class RefundTotals(Protocol):
    def refunded(self, payment_order_id: str) -> int | None:
        """What our refunds hold of the order's charge; None when the order has no refund."""


class PspRefunds(Protocol):
    def refunded_amount(self, charge_reference: str) -> int:
        """The sum of the PSP's pending and succeeded refunds of the charge."""


def _charge_of(order: OrderRecord) -> str | None:
    # An orphan charge (the order FAILED) is refunded through the same path: its charge is the orphan one.
    return order.psp_reference if order.status == "SUCCEEDED" else order.orphan_psp_reference


def _difference(order: OrderRecord, ours: RefundTotals, psp: PspRefunds) -> tuple[OrderRecord, int, int] | None:
    charge = _charge_of(order)
    refunded = ours.refunded(order.payment_order_id)
    if charge is None or refunded is None:
        return None
    at_psp = psp.refunded_amount(charge)
    return None if at_psp == refunded else (order, refunded, at_psp)


def _differences(
    orders: Iterable[OrderRecord], ours: RefundTotals, psp: PspRefunds, each: Each
) -> dict[str, tuple[OrderRecord, int, int]]:
    found = each(lambda order: _difference(order, ours, psp), orders)
    return {difference[0].payment_order_id: difference for difference in found if difference is not None}


def check_refunds(
    orders: Iterable[OrderRecord],
    *,
    ours: RefundTotals,
    psp: PspRefunds,
    pause: Callable[[], None],
    each: Each = map,
) -> list[Finding]:
    differing = _differences(orders, ours, psp, each)
    if differing:
        pause()
        differing = _differences((order for order, _, _ in differing.values()), ours, psp, each)
    return [
        Finding(
            check="refunds_match_psp",
            message=f"our refunds hold {refunded} of the charge, the PSP's {at_psp}",
            ids={
                "payment_order_id": order.payment_order_id,
                "payment_id": order.payment_id,
                "seller_id": order.seller_id,
                "psp_reference": str(_charge_of(order)),
            },
        )
        for order, refunded, at_psp in differing.values()
    ]
