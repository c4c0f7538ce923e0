"""Payment use cases: accept a checkout, dispatch its orders, fold order progress into the payment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from functions.common.clock import Clock, iso, utc_now
from functions.common.errors import Conflict, IdempotencyKeyReused, NotFound
from functions.common.events import TERMINAL_ORDER_STATUSES, ExecuteOrder, OrderStatusChanged
from functions.common.fingerprints import fingerprint, without_added_defaults
from functions.common.ids import deterministic_id
from functions.common.tenants import DEFAULT_TENANT, scoped_id
from functions.payment.models import OrderView, Payment, PaymentRequest, PaymentStatus


class PaymentStore(Protocol):
    def reserve_order_ids(self, payment_id: str, payment_order_ids: Sequence[str]) -> str | None:
        """Claim the ids globally for this payment; return an id already owned by another payment."""

    def insert(self, payment: Payment) -> bool:
        """Store a new payment; False if one with this id exists already."""

    def get(self, payment_id: str) -> Payment | None: ...

    def replace(self, payment: Payment, expected_version: int) -> bool:
        """Write `payment` if the stored version is still `expected_version`."""


class ExecuteOrderPublisher(Protocol):
    def publish_many(self, messages: Sequence[ExecuteOrder]) -> None: ...


# The request header a reused key is reported under (the API layer's name for it).
IDEMPOTENCY_PARAM = "Idempotency-Key"


def payment_id_for(caller: str, idempotency_key: str) -> str:
    # Derived from the caller and its Idempotency-Key, so a retry after a crash converges on the same
    # payment, and two callers' equal keys never meet.
    return deterministic_id("pay", caller, idempotency_key)


# Order fields added after payments were first stored, with the defaults they were added with.
_ADDED_ORDER_FIELDS = {"application_fee": 0, "hold": "none"}


def request_fingerprint(request: PaymentRequest) -> str:
    body = request.model_dump(mode="json")
    body["orders"] = [without_added_defaults(order, _ADDED_ORDER_FIELDS) for order in body["orders"]]
    return fingerprint(body)


def _same_request(existing: Payment, request_print: str) -> Payment:
    """The stored payment, if it was made from this very body; else the key was reused for another one.
    Checked against the payment itself, so it holds after the idempotency record has expired."""
    if existing.request_fingerprint != request_print:
        raise IdempotencyKeyReused(IDEMPOTENCY_PARAM)
    return existing


def scoped_request(request: PaymentRequest, tenant_id: str) -> PaymentRequest:
    """The request with its orders' ids as the tenant's records are stored (functions/common/tenants.py)."""
    orders = [
        order.model_copy(
            update={
                "payment_order_id": scoped_id(tenant_id, order.payment_order_id),
                "seller_id": scoped_id(tenant_id, order.seller_id),
            }
        )
        for order in request.orders
    ]
    return request.model_copy(update={"orders": orders})


def accept_payment(
    request: PaymentRequest,
    *,
    caller: str,
    idempotency_key: str,
    store: PaymentStore,
    tenant_id: str = DEFAULT_TENANT,
    now: Clock = utc_now,
) -> Payment:
    """Validate global order-id uniqueness and store the payment. Dispatch follows from the store's
    change stream (transactional outbox), so nothing here can strand a stored payment."""
    payment_id = scoped_id(tenant_id, payment_id_for(caller, idempotency_key))
    request_print = request_fingerprint(request)
    existing = store.get(payment_id)
    if existing is not None:
        # Checked before reserving: another body's order ids must not be claimed for this payment.
        return _same_request(existing, request_print)
    taken = store.reserve_order_ids(payment_id, [o.payment_order_id for o in request.orders])
    if taken is not None:
        index = next(i for i, o in enumerate(request.orders) if o.payment_order_id == taken)
        raise Conflict(
            f"payment_order_id {taken} belongs to an earlier payment.",
            param=f"orders[{index}].payment_order_id",
            code="duplicate_payment_order",
        )
    stamp = iso(now())
    payment = Payment(
        payment_id=payment_id,
        checkout_id=request.checkout_id,
        buyer_id=request.buyer_id,
        currency=request.currency,
        amount=sum(o.amount for o in request.orders),
        created_at=stamp,
        updated_at=stamp,
        metadata=request.metadata,
        orders=[
            OrderView(
                payment_order_id=o.payment_order_id,
                seller_id=o.seller_id,
                amount=o.amount,
                application_fee=o.application_fee,
                hold=o.hold,
                payment_method=o.payment_method or request.payment_method,
            )
            for o in request.orders
        ],
        request_fingerprint=request_print,
    )
    if not store.insert(payment):
        winner = store.get(payment_id)
        if winner is None:  # pragma: no cover - insert said it exists
            raise RuntimeError("payment vanished between insert and read")
        return _same_request(winner, request_print)
    return payment


def get_payment(payment_id: str, *, store: PaymentStore) -> Payment:
    payment = store.get(payment_id)
    if payment is None:
        raise NotFound(f"No payment {payment_id}.", param="payment_id")
    return payment


def orders_to_execute(payment: Payment) -> list[ExecuteOrder]:
    return [
        ExecuteOrder(
            payment_id=payment.payment_id,
            payment_order_id=o.payment_order_id,
            seller_id=o.seller_id,
            buyer_id=payment.buyer_id,
            amount=o.amount,
            application_fee=o.application_fee,
            hold=o.hold,
            currency=payment.currency,
            payment_method=o.payment_method,
        )
        for o in payment.orders
        if o.status == "NOT_STARTED"
    ]


def dispatch_payment(payment: Payment, *, publisher: ExecuteOrderPublisher) -> int:
    messages = orders_to_execute(payment)
    publisher.publish_many(messages)
    return len(messages)


_STATUS_RANK = {"NOT_STARTED": 0, "EXECUTING": 1, "PENDING": 2, "SUCCEEDED": 3, "FAILED": 3}


def _next_status(current: str, proposed: str | None) -> str:
    if proposed is None or current in TERMINAL_ORDER_STATUSES:
        return current  # terminal states never regress; late or duplicate events are no-ops
    return proposed if _STATUS_RANK[proposed] >= _STATUS_RANK[current] else current


def aggregate_status(orders: Sequence[OrderView]) -> PaymentStatus:
    if not all(o.done for o in orders):
        return "PROCESSING"
    succeeded = sum(1 for o in orders if o.status == "SUCCEEDED")
    if succeeded == len(orders):
        return "SUCCEEDED"
    return "FAILED" if succeeded == 0 else "PARTIALLY_FAILED"


def apply_order_event(payment: Payment, event: OrderStatusChanged, *, now: Clock = utc_now) -> Payment | None:
    """The payment after `event`, or None when the event changes nothing (duplicate or stale)."""
    orders = []
    changed = False
    for order in payment.orders:
        if order.payment_order_id != event.payment_order_id:
            orders.append(order)
            continue
        updated = order.model_copy(
            update={
                "status": _next_status(order.status, event.status),
                "psp_reference": order.psp_reference or event.psp_reference,
                "failure_code": order.failure_code or event.failure_code,
                "wallet_updated": order.wallet_updated or bool(event.wallet_updated),
                "ledger_updated": order.ledger_updated or bool(event.ledger_updated),
            }
        )
        changed = updated != order
        orders.append(updated)
    if not changed:
        return None
    return payment.model_copy(
        update={
            "orders": orders,
            "status": aggregate_status(orders),
            "updated_at": iso(now()),
            "version": payment.version + 1,
        }
    )


def record_order_progress(
    event: OrderStatusChanged, *, store: PaymentStore, now: Clock = utc_now, attempts: int = 20
) -> Payment | None:
    """Fold one order event into its payment with optimistic concurrency (one item per payment).

    Returns the payment as changed by the event, or None if the event was a duplicate or stale."""
    change = record_orders_progress([event], store=store, now=now, attempts=attempts)
    return None if change is None else change.after


@dataclass(frozen=True)
class PaymentChange:
    before: Payment
    after: Payment

    @property
    def concluded(self) -> bool:
        """This write took the payment out of PROCESSING (once per payment, however events are batched)."""
        return self.before.status == "PROCESSING" != self.after.status


def record_orders_progress(
    events: Sequence[OrderStatusChanged], *, store: PaymentStore, now: Clock = utc_now, attempts: int = 20
) -> PaymentChange | None:
    """Fold events of one payment's orders into it in one write, with optimistic concurrency: each event
    applies as it would alone, in the order given, so a batch's events cost one read and one write.

    Returns the payment before and after the write, or None if every event was a duplicate or stale."""
    payment_id = events[0].payment_id
    if any(e.payment_id != payment_id for e in events):
        raise ValueError("events of more than one payment")
    for _ in range(attempts):
        payment = store.get(payment_id)
        if payment is None:
            raise NotFound(f"No payment {payment_id} for order {events[0].payment_order_id}.")
        updated = payment
        for event in events:
            updated = apply_order_event(updated, event, now=now) or updated
        if updated is payment:
            return None
        updated = updated.model_copy(update={"version": payment.version + 1})  # one write, one version
        if store.replace(updated, expected_version=payment.version):
            return PaymentChange(before=payment, after=updated)
    raise RuntimeError(f"payment {payment_id} kept changing; the message will be retried")
