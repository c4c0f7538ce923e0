"""In-memory ports of the refund domain, with the conditional semantics of the DynamoDB adapters."""

from __future__ import annotations

from functions.executor.domain import OrderExecution
from functions.psp.models import PspUnavailable, RefundResult
from functions.refund.domain import Reservation
from functions.refund.models import ChargeRefunds, Refund


class MemoryRefundStore:
    def __init__(self, stamp: str = "2026-01-01T00:00:00+00:00") -> None:
        self.refunds: dict[str, Refund] = {}
        self.charges: dict[str, ChargeRefunds] = {}
        self.stamp = stamp  # what a change writes as updated_at (a test moves it on)

    def get(self, refund_id: str) -> Refund | None:
        return self.refunds.get(refund_id)

    def charge_refunds(self, payment_order_id: str) -> ChargeRefunds | None:
        return self.charges.get(payment_order_id)

    def reserve(self, refund: Refund, charge: ChargeRefunds) -> Reservation:
        if refund.refund_id in self.refunds:
            return "exists"
        stored = self.charges.get(charge.payment_order_id)
        refunded = stored.refunded if stored is not None else 0
        if refunded > charge.charged - refund.amount:
            return "exceeds"
        self.refunds[refund.refund_id] = refund
        self.charges[charge.payment_order_id] = charge.model_copy(update={"refunded": refunded + refund.amount})
        return "stored"

    def _update(self, refund_id: str, **changes: object) -> Refund:
        self.refunds[refund_id] = self.refunds[refund_id].model_copy(update={**changes, "updated_at": self.stamp})
        return self.refunds[refund_id]

    def pending_since(self, *, updated_before: str) -> list[Refund]:
        pending = [r for r in self.refunds.values() if r.status == "PENDING" and r.updated_at < updated_before]
        return sorted(pending, key=lambda r: r.updated_at)

    def mark_sent_again(self, refund_id: str) -> Refund:
        refund = self.refunds[refund_id]
        if refund.status != "PENDING" or refund.psp_status is not None:
            return refund
        return self._update(refund_id)

    def record_pending(self, refund_id: str, psp_refund_id: str | None) -> Refund:
        refund = self.refunds[refund_id]
        if refund.status != "PENDING" or refund.psp_status not in (None, "pending"):
            return refund
        return self._update(refund_id, psp_status="pending", psp_refund_id=psp_refund_id or refund.psp_refund_id)

    def succeed(self, refund_id: str, psp_refund_id: str | None) -> Refund:
        refund = self.refunds[refund_id]
        if refund.status != "PENDING":
            return refund
        return self._update(
            refund_id,
            status="SUCCEEDED",
            psp_status="succeeded",
            debited=True,
            psp_refund_id=psp_refund_id or refund.psp_refund_id,
        )

    def fail(self, refund_id: str, failure_code: str, psp_refund_id: str | None) -> Refund:
        refund = self.refunds[refund_id]
        if refund.status == "FAILED":
            return refund
        charge = self.charges[refund.payment_order_id]
        self.charges[refund.payment_order_id] = charge.model_copy(update={"refunded": charge.refunded - refund.amount})
        return self._update(
            refund_id,
            status="FAILED",
            psp_status="failed",
            failure_code=failure_code,
            psp_refund_id=psp_refund_id or refund.psp_refund_id,
        )


class MemoryOrders:
    def __init__(self, *orders: OrderExecution, accepted: tuple[str, ...] = ()) -> None:
        self.orders = {o.payment_order_id: o for o in orders}
        self.accepted_ids = set(accepted) | set(self.orders)

    def order(self, payment_order_id: str) -> OrderExecution | None:
        return self.orders.get(payment_order_id)

    def accepted(self, payment_order_id: str) -> bool:
        return payment_order_id in self.accepted_ids


class ScriptedRefundPsp:
    """The PSP's refunds by idempotency key: the first call decides (by `answer`), later ones get it back."""

    def __init__(self, answer: str = "succeeded", failure_code: str | None = None) -> None:
        self.answer = answer
        self.failure_code = failure_code
        self.by_key: dict[str, RefundResult] = {}
        self.calls: list[str] = []
        self.lookups: list[str] = []
        self.broken: set[str] = set()  # references whose lookup fails

    def refund_by_reference(self, merchant_reference: str) -> RefundResult | None:
        """The PSP's lookup (our refund id is the merchant reference and the idempotency key)."""
        self.lookups.append(merchant_reference)
        if merchant_reference in self.broken:
            raise PspUnavailable("PSP answered 503 to a refund lookup")
        return self.by_key.get(merchant_reference)

    def decide(self, idempotency_key: str, status: str, failure_code: str | None = None) -> None:
        """The PSP decides a refund it held pending (whose webhook we may never get)."""
        held = self.by_key[idempotency_key]
        self.by_key[idempotency_key] = RefundResult(status, held.psp_reference, failure_code)  # type: ignore[arg-type]

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int) -> RefundResult:
        self.calls.append(idempotency_key)
        if idempotency_key not in self.by_key:
            status = self.answer
            self.by_key[idempotency_key] = RefundResult(
                status,  # type: ignore[arg-type]
                f"re_{len(self.by_key)}",
                self.failure_code if status == "failed" else None,
            )
        return self.by_key[idempotency_key]
