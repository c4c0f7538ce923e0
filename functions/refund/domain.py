"""Refunds: accept a refund against what is left of a charge, ask the PSP once, and move the money back.

A refund is PENDING until the PSP decides: SUCCEEDED (the wallet is debited, then the ledger books it) or
FAILED (its reservation on the charge is released in the same write). The PSP may also fail a refund it
first reported as succeeded: the refund then moves SUCCEEDED -> FAILED once and the debit is restored
exactly (a credit back and a reversal journal). FAILED is final; every transition is a conditional write on
the expected state, so late, repeated or reordered verdicts are no-ops. Each decision's hand-offs are re-sent
whenever the refund is seen again (the wallet applies each movement once), so a crash between deciding and
handing on loses nothing."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel

from functions.common.backoff import TransientError
from functions.common.clock import Clock, iso, utc_now
from functions.common.errors import BusinessRuleViolation, IdempotencyKeyReused, NotFound
from functions.common.fingerprints import fingerprint, without_added_defaults
from functions.common.ids import deterministic_id
from functions.common.refund_events import ExecuteRefund, RefundMoney
from functions.executor.domain import OrderExecution
from functions.psp.models import RefundResult
from functions.refund.models import REFUND_FAILED, ChargeRefunds, PspRefundStatus, Refund, RefundRequest

Reservation = Literal["stored", "exists", "exceeds", "contended"]
IDEMPOTENCY_PARAM = "Idempotency-Key"
ORPHAN_REASON = "orphan_charge"


class RefundExceedsCharge(BusinessRuleViolation):
    code = "refund_exceeds_charge"


class OrderNotRefundable(BusinessRuleViolation):
    code = "order_not_refundable"


class RefundStore(Protocol):
    def get(self, refund_id: str) -> Refund | None: ...

    def charge_refunds(self, payment_order_id: str) -> ChargeRefunds | None: ...

    def reserve(self, refund: Refund, charge: ChargeRefunds) -> Reservation:
        """Store the refund and add its amount to the charge's refunded total in one transaction, only if the
        refund is new and the total stays within the charge: "stored", else "exists" or "exceeds"; or
        "contended" when a concurrent transaction on the charge made it give up (nothing written)."""

    def record_pending(self, refund_id: str, psp_refund_id: str | None) -> Refund:
        """Note that the PSP accepted the refund but has not decided (PENDING, not yet asked); else the state."""

    def succeed(self, refund_id: str, psp_refund_id: str | None) -> Refund:
        """PENDING -> SUCCEEDED (debit due); any other state is returned as it is."""

    def fail(self, refund_id: str, failure_code: str, psp_refund_id: str | None) -> Refund:
        """PENDING or SUCCEEDED -> FAILED, releasing the refund's reservation in the same transaction; a FAILED
        refund is returned as it is."""


class ChargedOrders(Protocol):
    """The pay-in orders, read only: the executor's record of each charge, and the payment's order ids."""

    def order(self, payment_order_id: str) -> OrderExecution | None: ...

    def accepted(self, payment_order_id: str) -> bool:
        """Whether a payment holds this order id (it may not have been charged yet)."""


class Publisher(Protocol):
    def publish(self, message: BaseModel) -> None: ...


class RefundPsp(Protocol):
    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int) -> RefundResult: ...


def refund_id_for(caller: str, idempotency_key: str) -> str:
    # From the caller and its key: a retry after a crash, or after the idempotency record expired, converges
    # on the same refund, and two callers' equal keys never meet.
    return deterministic_id("rf", caller, idempotency_key)


def orphan_refund_id(payment_order_id: str) -> str:
    # One automatic refund per orphan charge (an order has at most one charge: its idempotency key).
    return deterministic_id("rf", ORPHAN_REASON, payment_order_id)


def request_fingerprint(request: RefundRequest) -> str:
    return fingerprint(without_added_defaults(request.model_dump(mode="json"), {"refund_application_fee": True}))


def _same_request(existing: Refund, request_print: str) -> Refund:
    if existing.request_fingerprint != request_print:
        raise IdempotencyKeyReused(IDEMPOTENCY_PARAM)
    return existing


def _charge_of(payment_order_id: str, *, store: RefundStore, orders: ChargedOrders) -> ChargeRefunds:
    """What is refundable of the order: the refund service's own record once one refund exists, else the
    executor's decided charge. Unknown order: 404; an order that has not SUCCEEDED: 422."""
    charge = store.charge_refunds(payment_order_id)
    if charge is not None:
        if charge.orphan:  # a FAILED order's orphan charge is refunded automatically, never through the API
            raise OrderNotRefundable("The order did not succeed.", param="payment_order_id")
        return charge
    order = orders.order(payment_order_id)
    if order is None and not orders.accepted(payment_order_id):
        raise NotFound(f"No payment order {payment_order_id}.", param="payment_order_id")
    if order is None or order.status != "SUCCEEDED" or order.psp_reference is None:
        raise OrderNotRefundable("Only a SUCCEEDED order can be refunded.", param="payment_order_id")
    return ChargeRefunds(
        payment_order_id=order.payment_order_id,
        payment_id=order.payment_id,
        seller_id=order.seller_id,
        currency=order.currency,
        charged=order.amount,
        charge_reference=order.psp_reference,
        application_fee=order.application_fee,
    )


def request_refund(
    request: RefundRequest,
    *,
    caller: str,
    idempotency_key: str,
    store: RefundStore,
    orders: ChargedOrders,
    now: Clock = utc_now,
    attempts: int = 10,
) -> Refund:
    """Reserve the refund's amount on the order's charge and store the refund (PENDING); the refunds table's
    stream hands it to the executor. Concurrent refunds of one order cannot exceed its charge: the
    reservation is one conditional update of the charge's refunded total."""
    refund_id = refund_id_for(caller, idempotency_key)
    request_print = request_fingerprint(request)
    existing = store.get(refund_id)
    if existing is not None:
        return _same_request(existing, request_print)
    charge = _charge_of(request.payment_order_id, store=store, orders=orders)
    for _ in range(attempts):
        amount = request.amount if request.amount is not None else charge.refundable
        if amount <= 0 or amount > charge.refundable:
            raise RefundExceedsCharge(
                f"The order has {charge.refundable} of {charge.charged} left to refund.", param="amount"
            )
        stamp = iso(now())
        refund = Refund(
            refund_id=refund_id,
            payment_order_id=charge.payment_order_id,
            payment_id=charge.payment_id,
            seller_id=charge.seller_id,
            amount=amount,
            currency=charge.currency,
            reason=request.reason,
            refund_application_fee=request.refund_application_fee,
            application_fee_refunded=charge.fee_share(amount) if request.refund_application_fee else 0,
            charge_reference=charge.charge_reference,
            created_at=stamp,
            updated_at=stamp,
            request_fingerprint=request_print,
        )
        outcome = store.reserve(refund, charge)
        if outcome == "stored":
            return refund
        if outcome == "exists":  # the same key, concurrently
            winner = store.get(refund_id)
            if winner is None:  # pragma: no cover - reserve said it exists
                raise RuntimeError("refund vanished between reserve and read")
            return _same_request(winner, request_print)
        # Another refund took part of the charge since it was read (or raced it): read it again, re-check.
        charge = store.charge_refunds(request.payment_order_id) or charge
    raise TransientError(f"the refunds of {request.payment_order_id} kept changing; retry the request")


def get_refund(refund_id: str, *, store: RefundStore) -> Refund:
    refund = store.get(refund_id)
    if refund is None:
        raise NotFound(f"No refund {refund_id}.", param="refund_id")
    return refund


def refund_orphan_charge(order: OrderExecution, *, store: RefundStore, now: Clock = utc_now) -> Refund | None:
    """The automatic refund of an orphan charge (the PSP charged an order we decided FAILED): the whole
    charge, reason orphan_charge. Idempotent: the refund id is derived from the order. None if the order
    carries no orphan charge."""
    if order.status != "FAILED" or order.orphan_psp_reference is None:
        return None
    refund_id = orphan_refund_id(order.payment_order_id)
    existing = store.get(refund_id)
    if existing is not None:
        return existing
    charge = ChargeRefunds(
        payment_order_id=order.payment_order_id,
        payment_id=order.payment_id,
        seller_id=order.seller_id,
        currency=order.currency,
        charged=order.amount,
        charge_reference=order.orphan_psp_reference,
        orphan=True,
    )
    stamp = iso(now())
    refund = Refund(
        refund_id=refund_id,
        payment_order_id=order.payment_order_id,
        payment_id=order.payment_id,
        seller_id=order.seller_id,
        amount=order.amount,
        currency=order.currency,
        reason=ORPHAN_REASON,
        charge_reference=order.orphan_psp_reference,
        orphan=True,
        refund_application_fee=False,  # the seller was never credited, nor the platform its fee
        created_at=stamp,
        updated_at=stamp,
    )
    outcome = store.reserve(refund, charge)
    if outcome == "contended":
        raise TransientError(f"the charge of {order.payment_order_id} was contended; the stream retries it")
    if outcome == "exceeds":
        raise RuntimeError(f"the orphan charge of {order.payment_order_id} is already refunded by another refund")
    return store.get(refund_id) if outcome == "exists" else refund


def apply_verdict(
    refund_id: str, status: PspRefundStatus, *, psp_refund_id: str | None, failure_code: str | None, store: RefundStore
) -> Refund:
    """Record the PSP's verdict (its answer or a webhook) through the conditional transitions."""
    if status == "succeeded":
        return store.succeed(refund_id, psp_refund_id)
    if status == "failed":
        return store.fail(refund_id, failure_code or REFUND_FAILED, psp_refund_id)
    return store.record_pending(refund_id, psp_refund_id)


def hand_on(refund: Refund, *, wallet: Publisher) -> None:
    """Tell the wallet what the refund's money must do: a succeeded refund's debit, and once it failed after
    succeeding, the restore too (both are re-sent every time; each is applied once). An orphan charge's refund
    moves no wallet money: the seller was never credited."""
    if refund.orphan or not refund.debited:
        return
    movements: list[Literal["debit", "restore"]] = ["debit"]
    if refund.status == "FAILED":
        movements.append("restore")
    for movement in movements:
        wallet.publish(
            RefundMoney(
                refund_id=refund.refund_id,
                payment_order_id=refund.payment_order_id,
                payment_id=refund.payment_id,
                seller_id=refund.seller_id,
                amount=refund.amount,
                application_fee_refunded=refund.application_fee_refunded,
                currency=refund.currency,
                movement=movement,
            )
        )


def execute_refund(message: ExecuteRefund, *, store: RefundStore, psp: RefundPsp, wallet: Publisher) -> Refund:
    """Ask the PSP for the refund (idempotency key = refund_id, so a redelivery or a crashed attempt gets the
    same refund back), record its answer, hand on. A refund the PSP already answered is not asked again."""
    refund = store.get(message.refund_id)
    if refund is None:
        raise RuntimeError(f"refund {message.refund_id} is not stored")  # the stream only sends stored ones
    if refund.status == "PENDING" and refund.psp_status is None:
        result = psp.refund(
            idempotency_key=refund.refund_id, charge_reference=refund.charge_reference, amount=refund.amount
        )
        refund = apply_verdict(
            refund.refund_id,
            result.status,
            psp_refund_id=result.psp_reference,
            failure_code=result.failure_code,
            store=store,
        )
    hand_on(refund, wallet=wallet)
    return refund


def settle_refund(
    refund_id: str,
    status: PspRefundStatus,
    *,
    psp_refund_id: str | None,
    failure_code: str | None,
    store: RefundStore,
    wallet: Publisher,
) -> Refund | None:
    """A PSP webhook's verdict on one of our refunds (None if it is not ours). Re-sends the hand-offs of the
    refund's state either way: a webhook retried after a crash completes what the first delivery began."""
    if store.get(refund_id) is None:
        return None
    refund = apply_verdict(refund_id, status, psp_refund_id=psp_refund_id, failure_code=failure_code, store=store)
    hand_on(refund, wallet=wallet)
    return refund
