"""Issue 11 A5 (domain): Idempotency-Keys are scoped per caller, and a key reused with another body is
refused by the payment's own fingerprint, whatever became of the idempotency record."""

from __future__ import annotations

import pytest

from functions.common.errors import IdempotencyKeyReused
from functions.common.fingerprints import fingerprint
from functions.payment import domain
from functions.payment.models import Payment
from tests.unit.test_payment_domain import MemoryStore, now, request


def test_a5_the_same_key_under_two_callers_makes_two_payments() -> None:
    store = MemoryStore()

    # Given two callers that happen to pick the same Idempotency-Key
    first = domain.accept_payment(
        request(("po_a", "s1", 100)), caller="key_id_a", idempotency_key="order-1", store=store, now=now
    )
    second = domain.accept_payment(
        request(("po_b", "s1", 700)), caller="key_id_b", idempotency_key="order-1", store=store, now=now
    )

    # Then each has its own payment, with its own orders
    assert first.payment_id != second.payment_id
    assert first.payment_id == domain.payment_id_for("key_id_a", "order-1")
    assert second.payment_id == domain.payment_id_for("key_id_b", "order-1")
    assert sorted(p.amount for p in store.payments.values()) == [100, 700]
    assert store.guards == {"po_a": first.payment_id, "po_b": second.payment_id}


def test_a5_a_reused_key_with_another_body_is_refused_and_claims_nothing() -> None:
    store = MemoryStore()
    original = domain.accept_payment(
        request(("po_1", "s1", 100)), caller="key_id_a", idempotency_key="k", store=store, now=now
    )

    # When the same caller sends the same key with another checkout (as after the idempotency record expired)
    with pytest.raises(IdempotencyKeyReused) as raised:
        domain.accept_payment(
            request(("po_2", "s1", 999)), caller="key_id_a", idempotency_key="k", store=store, now=now
        )

    # Then it is an idempotency error on the header, the payment is untouched and po_2 is not burned
    assert (raised.value.status_code, raised.value.error_type, raised.value.code, raised.value.param) == (
        422,
        "idempotency_error",
        "idempotency_key_reused",
        "Idempotency-Key",
    )
    assert store.payments == {original.payment_id: original}
    assert store.guards == {"po_1": original.payment_id}


def test_a5_the_same_body_again_answers_the_stored_payment() -> None:
    store = MemoryStore()
    body = request(("po_1", "s1", 100), ("po_2", "s2", 5))
    first = domain.accept_payment(body, caller="key_id_a", idempotency_key="k", store=store, now=now)

    again = domain.accept_payment(
        request(("po_1", "s1", 100), ("po_2", "s2", 5)), caller="key_id_a", idempotency_key="k", store=store
    )

    assert again == first
    # The body as it was dumped before orders had a fee or a hold: a payment stored then still matches its retry.
    before_fees = body.model_dump(mode="json", exclude={"orders": {"__all__": {"application_fee", "hold"}}})
    assert first.request_fingerprint == fingerprint(before_fees)
    assert len(store.payments) == 1


class RacingStore(MemoryStore):
    """A store in which another request with the same caller and key inserts its payment between this
    request's read and its insert."""

    def __init__(self, winner: Payment) -> None:
        super().__init__()
        self.winner = winner

    def insert(self, payment: Payment) -> bool:
        self.payments[self.winner.payment_id] = self.winner
        return False


def test_a5_losing_an_insert_race_to_another_body_is_refused() -> None:
    other = MemoryStore()
    winner = domain.accept_payment(
        request(("po_w", "s1", 300)), caller="key_id_a", idempotency_key="k", store=other, now=now
    )
    store = RacingStore(winner)

    with pytest.raises(IdempotencyKeyReused):
        domain.accept_payment(request(("po_l", "s1", 1)), caller="key_id_a", idempotency_key="k", store=store)

    # And losing it to the same body answers the winner
    same = RacingStore(winner)
    assert (
        domain.accept_payment(request(("po_w", "s1", 300)), caller="key_id_a", idempotency_key="k", store=same)
        == winner
    )


def test_a5_fingerprints_ignore_key_order_and_see_every_value() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1, "b": [1, 2]}) != fingerprint({"a": 1, "b": [2, 1]})
    assert fingerprint({"amount": 100}) != fingerprint({"amount": "100"})
