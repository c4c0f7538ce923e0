"""The refund domain on in-memory ports: reservations within the charge, the PSP asked once per refund,
verdicts through conditional transitions in any order, and hand-offs re-sent after a crash."""

from __future__ import annotations

import pytest

from functions.common.errors import IdempotencyKeyReused, NotFound
from functions.common.refund_events import ExecuteRefund, RefundMoney
from functions.executor.domain import OrderExecution
from functions.psp.models import RefundResult
from functions.refund import domain
from functions.refund.domain import Reservation
from functions.refund.models import ChargeRefunds, Refund, RefundRequest
from functions.refund.verdicts import RefundVerdicts, verdict_of
from tests.support.fakes import DyingPublisher, ProcessDied, Recorder
from tests.support.refund_fakes import MemoryOrders, MemoryRefundStore, ScriptedRefundPsp


def succeeded_order(po: str = "po_1", amount: int = 1000) -> OrderExecution:
    return OrderExecution(
        payment_order_id=po,
        payment_id="pay_1",
        seller_id="seller_a",
        amount=amount,
        currency="USD",
        status="SUCCEEDED",
        psp_reference="ch_1",
    )


def ask(store: MemoryRefundStore, orders: MemoryOrders, amount: int | None, key: str, po: str = "po_1") -> str:
    request = RefundRequest(payment_order_id=po, amount=amount)
    return domain.request_refund(request, caller="c", idempotency_key=key, store=store, orders=orders).refund_id


def movements(wallet: Recorder) -> list[tuple[str, str, int]]:
    return [(m.movement, m.refund_id, m.amount) for m in wallet.messages if isinstance(m, RefundMoney)]


def test_partial_refunds_reserve_within_the_charge_and_the_rest_is_the_default() -> None:
    store, orders = MemoryRefundStore(), MemoryOrders(succeeded_order())
    ask(store, orders, 300, "k1")
    rest = ask(store, orders, None, "k2")
    assert store.refunds[rest].amount == 700
    assert store.charges["po_1"].refunded == 1000
    with pytest.raises(domain.RefundExceedsCharge):
        ask(store, orders, 1, "k3")
    with pytest.raises(domain.RefundExceedsCharge):
        ask(store, orders, None, "k4")


def test_an_over_refund_stores_nothing() -> None:
    store, orders = MemoryRefundStore(), MemoryOrders(succeeded_order())
    with pytest.raises(domain.RefundExceedsCharge):
        ask(store, orders, 1001, "k1")
    assert (store.refunds, store.charges) == ({}, {})


def test_orders_that_did_not_succeed_are_not_refundable_and_unknown_ones_are_not_found() -> None:
    failed = succeeded_order("po_f").model_copy(update={"status": "FAILED", "psp_reference": None})
    orders = MemoryOrders(failed, accepted=("po_queued",))
    store = MemoryRefundStore()
    with pytest.raises(domain.OrderNotRefundable):
        ask(store, orders, 1, "k1", po="po_f")
    with pytest.raises(domain.OrderNotRefundable):  # accepted, not charged yet
        ask(store, orders, 1, "k2", po="po_queued")
    with pytest.raises(NotFound):
        ask(store, orders, 1, "k3", po="po_unknown")


def test_the_same_key_returns_the_refund_and_another_body_is_refused() -> None:
    store, orders = MemoryRefundStore(), MemoryOrders(succeeded_order())
    first = ask(store, orders, 300, "k1")
    assert ask(store, orders, 300, "k1") == first
    assert store.charges["po_1"].refunded == 300
    with pytest.raises(IdempotencyKeyReused):
        ask(store, orders, 301, "k1")


def test_a_succeeded_refund_is_debited_once_however_often_its_message_comes() -> None:
    store, orders, psp, wallet = MemoryRefundStore(), MemoryOrders(succeeded_order()), ScriptedRefundPsp(), Recorder()
    refund_id = ask(store, orders, 400, "k1")
    message = ExecuteRefund(refund_id=refund_id, payment_order_id="po_1")
    # The same message twice: the PSP is asked once, the debit re-sent (the wallet applies it once)
    assert domain.execute_refund(message, store=store, psp=psp, wallet=wallet).status == "SUCCEEDED"
    domain.execute_refund(message, store=store, psp=psp, wallet=wallet)
    assert psp.calls == [refund_id]
    assert movements(wallet) == [("debit", refund_id, 400)] * 2


def test_a_crash_after_the_psp_call_asks_again_with_the_same_key_and_gets_the_same_refund() -> None:
    store, orders, psp = MemoryRefundStore(), MemoryOrders(succeeded_order()), ScriptedRefundPsp()
    refund_id = ask(store, orders, 400, "k1")
    message = ExecuteRefund(refund_id=refund_id, payment_order_id="po_1")
    original_succeed = store.succeed

    def die(refund_id: str, psp_refund_id: str | None) -> object:
        raise ProcessDied

    store.succeed = die  # type: ignore[method-assign]
    with pytest.raises(ProcessDied):
        domain.execute_refund(message, store=store, psp=psp, wallet=Recorder())
    store.succeed = original_succeed  # type: ignore[method-assign]
    wallet = Recorder()
    refund = domain.execute_refund(message, store=store, psp=psp, wallet=wallet)
    assert (refund.status, refund.psp_refund_id, psp.calls) == ("SUCCEEDED", "re_0", [refund_id, refund_id])
    assert len(psp.by_key) == 1
    assert movements(wallet) == [("debit", refund_id, 400)]


def test_a_crash_between_deciding_and_handing_on_is_completed_by_the_redelivery() -> None:
    store, orders, psp = MemoryRefundStore(), MemoryOrders(succeeded_order()), ScriptedRefundPsp()
    refund_id = ask(store, orders, 400, "k1")
    message = ExecuteRefund(refund_id=refund_id, payment_order_id="po_1")
    with pytest.raises(ProcessDied):
        domain.execute_refund(message, store=store, psp=psp, wallet=DyingPublisher())
    wallet = Recorder()
    domain.execute_refund(message, store=store, psp=psp, wallet=wallet)
    assert psp.calls == [refund_id]  # decided already: not asked again
    assert movements(wallet) == [("debit", refund_id, 400)]


def test_a_pending_refund_failed_by_webhook_releases_its_amount_and_moves_no_money() -> None:
    store, orders = MemoryRefundStore(), MemoryOrders(succeeded_order())
    psp, wallet = ScriptedRefundPsp(answer="pending"), Recorder()
    refund_id = ask(store, orders, 400, "k1")
    pending = domain.execute_refund(
        ExecuteRefund(refund_id=refund_id, payment_order_id="po_1"), store=store, psp=psp, wallet=wallet
    )
    assert (pending.status, pending.psp_status) == ("PENDING", "pending")
    failed = domain.settle_refund(
        refund_id, "failed", psp_refund_id="re_0", failure_code="declined", store=store, wallet=wallet
    )
    assert failed is not None and (failed.status, failed.failure_code) == ("FAILED", "declined")
    assert store.charges["po_1"].refunded == 0
    assert wallet.messages == []
    # Late and repeated verdicts change nothing
    for late in ("pending", "succeeded", "failed"):
        again = domain.settle_refund(refund_id, late, psp_refund_id=None, failure_code=None, store=store, wallet=wallet)  # type: ignore[arg-type]
        assert again is not None and again.status == "FAILED"
    assert (store.charges["po_1"].refunded, wallet.messages) == (0, [])


def test_a_webhook_verdict_before_the_executor_records_the_psp_answer_wins() -> None:
    store, orders = MemoryRefundStore(), MemoryOrders(succeeded_order())
    psp, wallet = ScriptedRefundPsp(answer="pending"), Recorder()
    refund_id = ask(store, orders, 400, "k1")
    domain.settle_refund(refund_id, "failed", psp_refund_id="re_0", failure_code=None, store=store, wallet=wallet)
    refund = domain.execute_refund(
        ExecuteRefund(refund_id=refund_id, payment_order_id="po_1"), store=store, psp=psp, wallet=wallet
    )
    assert (refund.status, refund.failure_code, psp.calls) == ("FAILED", "refund_failed", [])


def test_a_refund_failed_after_it_succeeded_is_restored_exactly_once() -> None:
    store, orders, psp, wallet = MemoryRefundStore(), MemoryOrders(succeeded_order()), ScriptedRefundPsp(), Recorder()
    refund_id = ask(store, orders, 400, "k1")
    domain.execute_refund(
        ExecuteRefund(refund_id=refund_id, payment_order_id="po_1"), store=store, psp=psp, wallet=wallet
    )
    for _ in range(2):  # the webhook delivered twice
        domain.settle_refund(refund_id, "failed", psp_refund_id="re_0", failure_code="lost", store=store, wallet=wallet)
    assert store.refunds[refund_id].status == "FAILED"
    assert store.charges["po_1"].refunded == 0
    # Every hand-on sends both movements; the wallet applies each once, in whichever order they arrive
    assert (
        movements(wallet) == [("debit", refund_id, 400)] + [("debit", refund_id, 400), ("restore", refund_id, 400)] * 2
    )


def test_an_orphan_charge_is_refunded_once_in_full_without_any_wallet_movement() -> None:
    order = succeeded_order("po_o", 4200).model_copy(
        update={"status": "FAILED", "psp_reference": None, "orphan_psp_reference": "ch_orphan"}
    )
    store, psp, wallet = MemoryRefundStore(), ScriptedRefundPsp(), Recorder()
    first = domain.refund_orphan_charge(order, store=store)
    again = domain.refund_orphan_charge(order, store=store)
    assert first is not None and again is not None and first.refund_id == again.refund_id
    assert (first.amount, first.reason, first.charge_reference, first.orphan) == (
        4200,
        "orphan_charge",
        "ch_orphan",
        True,
    )
    done = domain.execute_refund(
        ExecuteRefund(refund_id=first.refund_id, payment_order_id="po_o"), store=store, psp=psp, wallet=wallet
    )
    assert (done.status, wallet.messages) == ("SUCCEEDED", [])
    # The API does not refund it again: the order did not succeed
    with pytest.raises(domain.OrderNotRefundable):
        ask(store, MemoryOrders(order), 1, "k1", po="po_o")
    # An order without an orphan charge gets no automatic refund
    assert domain.refund_orphan_charge(succeeded_order("po_x"), store=store) is None


def test_a_reservation_that_lost_a_transaction_conflict_is_tried_again() -> None:
    store, orders = MemoryRefundStore(), MemoryOrders(succeeded_order())
    real_reserve = store.reserve
    outcomes: list[str] = []

    def contended_once(refund: Refund, charge: ChargeRefunds) -> Reservation:
        outcome: Reservation = "contended" if not outcomes else real_reserve(refund, charge)
        outcomes.append(outcome)
        return outcome

    store.reserve = contended_once  # type: ignore[method-assign]
    refund_id = ask(store, orders, 250, "k1")
    assert (outcomes, store.refunds[refund_id].amount, store.charges["po_1"].refunded) == (
        ["contended", "stored"],
        250,
        250,
    )


def test_a_refund_the_psp_canceled_fails_and_releases_its_amount() -> None:
    # Given a refund the PSP holds pending (Stripe: pending or requires_action)
    store, orders, wallet = MemoryRefundStore(), MemoryOrders(succeeded_order()), Recorder()
    refund_id = ask(store, orders, 400, "k1")
    message = ExecuteRefund(refund_id=refund_id, payment_order_id="po_1")
    domain.execute_refund(message, store=store, psp=ScriptedRefundPsp(answer="pending"), wallet=wallet)

    # When the PSP cancels it (refund.updated, status canceled: it will never pay it)
    verdict = verdict_of("refund.updated", {"id": "re_0", "status": "canceled"})

    # Then it is a failure: the refund is FAILED, its 400 released (the order can be refunded again), no money moved
    assert verdict == RefundResult("failed", "re_0", "refund_canceled")
    assert RefundVerdicts(store, wallet).settle(refund_id, verdict)
    refund = store.refunds[refund_id]
    assert (refund.status, refund.failure_code, store.charges["po_1"].refunded) == ("FAILED", "refund_canceled", 0)
    assert movements(wallet) == []
