from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.common.errors import Conflict
from functions.common.events import OrderStatusChanged
from functions.payment import domain
from functions.payment.models import OrderView, Payment, PaymentRequest


class MemoryStore:
    def __init__(self) -> None:
        self.payments: dict[str, Payment] = {}
        self.guards: dict[str, str] = {}

    def reserve_order_ids(self, payment_id: str, payment_order_ids: list[str]) -> str | None:
        for po in payment_order_ids:
            if self.guards.get(po, payment_id) != payment_id:
                return po
        self.guards.update(dict.fromkeys(payment_order_ids, payment_id))
        return None

    def insert(self, payment: Payment) -> bool:
        if payment.payment_id in self.payments:
            return False
        self.payments[payment.payment_id] = payment
        return True

    def get(self, payment_id: str) -> Payment | None:
        return self.payments.get(payment_id)

    def replace(self, payment: Payment, expected_version: int) -> bool:
        if self.payments[payment.payment_id].version != expected_version:
            return False
        self.payments[payment.payment_id] = payment
        return True


def now() -> datetime:
    return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def request(*orders: tuple[str, str, int]) -> PaymentRequest:
    return PaymentRequest(
        checkout_id="co_1",
        buyer_id="b_1",
        currency="USD",
        payment_method="tok_visa",
        orders=[{"payment_order_id": po, "seller_id": s, "amount": a} for po, s, a in orders],
    )


def test_accept_payment_sums_orders_and_is_idempotent_per_key() -> None:
    store = MemoryStore()
    first = domain.accept_payment(
        request(("po_1", "s1", 100), ("po_2", "s2", 250)), caller="ak_1", idempotency_key="k", store=store, now=now
    )
    again = domain.accept_payment(
        request(("po_1", "s1", 100), ("po_2", "s2", 250)), caller="ak_1", idempotency_key="k", store=store, now=now
    )
    assert first == again
    assert (first.amount, first.status, [o.status for o in first.orders]) == (
        350,
        "PROCESSING",
        ["NOT_STARTED", "NOT_STARTED"],
    )
    assert len(store.payments) == 1


def test_order_id_owned_by_another_payment_is_a_conflict_naming_the_field() -> None:
    store = MemoryStore()
    domain.accept_payment(request(("po_1", "s1", 100)), caller="ak_1", idempotency_key="k1", store=store, now=now)
    with pytest.raises(Conflict) as raised:
        domain.accept_payment(
            request(("po_9", "s1", 1), ("po_1", "s1", 5)), caller="ak_1", idempotency_key="k2", store=store
        )
    assert (raised.value.code, raised.value.param) == ("duplicate_payment_order", "orders[1].payment_order_id")
    assert len(store.payments) == 1


def _payment(*orders: OrderView) -> Payment:
    return Payment(
        payment_id="pay_1",
        checkout_id="co",
        buyer_id="b",
        currency="USD",
        amount=1,
        created_at="t",
        updated_at="t",
        orders=list(orders),
    )


def _order(po: str, **fields: object) -> OrderView:
    return OrderView.model_validate(
        {"payment_order_id": po, "seller_id": "s", "amount": 1, "payment_method": "tok_visa", **fields}
    )


def test_payment_succeeds_only_when_every_order_is_charged_credited_and_booked() -> None:
    payment = _payment(_order("po_1"), _order("po_2"))
    for event in (
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", status="SUCCEEDED"),
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", wallet_updated=True),
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", ledger_updated=True),
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_2", ledger_updated=True),
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_2", wallet_updated=True),
    ):
        updated = domain.apply_order_event(payment, event, now=now)
        assert updated is not None
        payment = updated
        assert payment.status == "PROCESSING"
    final = domain.apply_order_event(
        payment, OrderStatusChanged(payment_id="pay_1", payment_order_id="po_2", status="SUCCEEDED"), now=now
    )
    assert final is not None
    assert (final.status, final.version) == ("SUCCEEDED", 6)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["FAILED", "FAILED"], "FAILED"),
        (["FAILED", "SUCCEEDED"], "PARTIALLY_FAILED"),
        (["PENDING", "FAILED"], "PROCESSING"),
    ],
)
def test_aggregate_status(statuses: list[str], expected: str) -> None:
    orders = [_order(f"po_{i}", status=s, wallet_updated=True, ledger_updated=True) for i, s in enumerate(statuses)]
    assert domain.aggregate_status(orders) == expected


def test_terminal_states_never_regress_and_duplicates_change_nothing() -> None:
    payment = _payment(_order("po_1", status="FAILED", failure_code="card_declined"))
    for late in ("SUCCEEDED", "PENDING", "EXECUTING", "FAILED"):
        event = OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", status=late)  # type: ignore[arg-type]
        assert domain.apply_order_event(payment, event, now=now) is None


def test_pending_moves_on_to_succeeded_but_not_back_to_executing() -> None:
    payment = _payment(_order("po_1", status="PENDING"))
    back = OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", status="EXECUTING")
    assert domain.apply_order_event(payment, back, now=now) is None
    forward = OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", status="SUCCEEDED", psp_reference="ch")
    updated = domain.apply_order_event(payment, forward, now=now)
    assert updated is not None
    assert (updated.orders[0].status, updated.orders[0].psp_reference) == ("SUCCEEDED", "ch")


def test_record_progress_retries_on_a_concurrent_write() -> None:
    store = MemoryStore()
    store.insert(_payment(_order("po_1"), _order("po_2")))
    real_replace = store.replace
    collided = []

    def replace_once_stale(payment: Payment, expected_version: int) -> bool:
        if not collided:
            collided.append(True)
            return False  # another event won the race
        return real_replace(payment, expected_version)

    store.replace = replace_once_stale  # type: ignore[method-assign]
    event = OrderStatusChanged(payment_id="pay_1", payment_order_id="po_2", status="FAILED", failure_code="x")
    updated = domain.record_order_progress(event, store=store, now=now)
    assert updated is not None
    assert collided == [True]
    assert store.payments["pay_1"].orders[1].status == "FAILED"


def test_a_payment_s_events_fold_into_one_write_as_they_would_one_by_one() -> None:
    store = MemoryStore()
    store.insert(_payment(_order("po_1"), _order("po_2")))
    writes: list[int] = []
    real_replace = store.replace

    def counted(payment: Payment, expected_version: int) -> bool:
        writes.append(expected_version)
        return real_replace(payment, expected_version)

    store.replace = counted  # type: ignore[method-assign]
    events = [
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", status="SUCCEEDED", psp_reference="ch_1"),
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_2", status="FAILED", failure_code="card_declined"),
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", status="EXECUTING"),  # stale: no regress
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", status="SUCCEEDED", wallet_updated=True),
    ]
    updated = domain.record_orders_progress(events, store=store, now=now)
    assert updated is not None
    assert writes == [0]  # one write, against the version read
    stored = store.payments["pay_1"]
    assert stored.version == 1
    assert [(o.status, o.psp_reference, o.failure_code, o.wallet_updated) for o in stored.orders] == [
        ("SUCCEEDED", "ch_1", None, True),
        ("FAILED", None, "card_declined", False),
    ]
    # The same events one by one leave the same orders (four writes instead of one).
    one_by_one = MemoryStore()
    one_by_one.insert(_payment(_order("po_1"), _order("po_2")))
    for event in events:
        domain.record_order_progress(event, store=one_by_one, now=now)
    assert one_by_one.payments["pay_1"].orders == stored.orders
    assert one_by_one.payments["pay_1"].status == stored.status
    # Redelivered, they change nothing and write nothing.
    assert domain.record_orders_progress(events, store=store, now=now) is None
    assert writes == [0]


def test_events_of_two_payments_are_never_folded_together() -> None:
    store = MemoryStore()
    store.insert(_payment(_order("po_1")))
    events = [
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", status="SUCCEEDED"),
        OrderStatusChanged(payment_id="pay_2", payment_order_id="po_9", status="SUCCEEDED"),
    ]
    with pytest.raises(ValueError, match="more than one payment"):
        domain.record_orders_progress(events, store=store, now=now)
    assert store.payments["pay_1"].version == 0


def test_a_payment_is_concluded_once_however_its_events_are_batched() -> None:
    events = [
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", status="SUCCEEDED", psp_reference="ch"),
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", status="SUCCEEDED", wallet_updated=True),
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", status="SUCCEEDED", ledger_updated=True),
        OrderStatusChanged(payment_id="pay_1", payment_order_id="po_1", status="SUCCEEDED", ledger_updated=True),
    ]
    for batches in ([events], [[e] for e in events], [events[:2], events[2:]]):
        store = MemoryStore()
        store.insert(_payment(_order("po_1")))
        changes = [domain.record_orders_progress(batch, store=store, now=now) for batch in batches]
        assert [c.after.status for c in changes if c is not None and c.concluded] == ["SUCCEEDED"]
