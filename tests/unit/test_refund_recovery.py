"""The recovery of refunds left PENDING, on in-memory ports: a lost verdict webhook, a lost answer, a request
that never reached the PSP (sent again once its message is gone, and only once per retry window), a lookup
that fails, and a crash between any two of the sweep's writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.common.clock import iso
from functions.common.refund_events import ExecuteRefund, RefundMoney
from functions.refund import domain
from functions.refund.models import Refund, RefundRequest
from functions.refund.recovery import RefundRecoveryReport, recover_refunds
from tests.support.fakes import DyingPublisher, ProcessDied, Recorder
from tests.support.refund_fakes import MemoryOrders, MemoryRefundStore, ScriptedRefundPsp
from tests.unit.test_refund_domain import succeeded_order

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RESOLVE_AFTER = timedelta(minutes=30)
STUCK_AFTER = timedelta(hours=24)
RETRY_WINDOW = timedelta(hours=24)


def refund_of(store: MemoryRefundStore, po: str, amount: int, key: str) -> str:
    """A refund requested at T0 of a 1000 charge (the order is created on first use)."""
    orders = MemoryOrders(succeeded_order(po))
    request = RefundRequest(payment_order_id=po, amount=amount)
    refund = domain.request_refund(request, caller="c", idempotency_key=key, store=store, orders=orders, now=lambda: T0)
    return refund.refund_id


def sweep(
    store: MemoryRefundStore, psp: ScriptedRefundPsp, at: datetime, queue: Recorder, wallet: Recorder
) -> RefundRecoveryReport:
    store.stamp = iso(at)
    return recover_refunds(
        now=at,
        resolve_after=RESOLVE_AFTER,
        stuck_after=STUCK_AFTER,
        retry_window=RETRY_WINDOW,
        store=store,
        psp=psp,
        refund_queue=queue,
        wallet=wallet,
    )


def movements(wallet: Recorder) -> list[tuple[str, str, int]]:
    return [(m.movement, m.refund_id, m.amount) for m in wallet.messages if isinstance(m, RefundMoney)]


def executed(store: MemoryRefundStore, psp: ScriptedRefundPsp, refund_id: str, wallet: Recorder) -> None:
    """The executor's run of the refund's message (the PSP asked with key = refund_id)."""
    refund = store.refunds[refund_id]
    message = ExecuteRefund(refund_id=refund_id, payment_order_id=refund.payment_order_id)
    domain.execute_refund(message, store=store, psp=psp, wallet=wallet)


def test_a_refund_whose_verdict_webhook_was_lost_is_settled_from_the_psps_answer() -> None:
    # Given two refunds the PSP held pending (their webhooks lost), then decided: one failed, one succeeded
    store, psp, queue, wallet = MemoryRefundStore(iso(T0)), ScriptedRefundPsp("pending"), Recorder(), Recorder()
    failing, succeeding = refund_of(store, "po_1", 400, "k1"), refund_of(store, "po_2", 300, "k2")
    executed(store, psp, failing, wallet)
    executed(store, psp, succeeding, wallet)
    psp.decide(failing, "failed", "expired_or_canceled_card")
    psp.decide(succeeding, "succeeded")

    # When the sweep runs before the deadline, nothing is looked up
    early = sweep(store, psp, T0 + RESOLVE_AFTER - timedelta(seconds=1), queue, wallet)
    assert (early.examined, psp.lookups) == (0, [])

    # When it runs past the deadline
    report = sweep(store, psp, T0 + RESOLVE_AFTER + timedelta(seconds=1), queue, wallet)

    # Then the failed one is FAILED with its reservation released, and moved no money; the succeeded one is
    # SUCCEEDED and its debit handed to the wallet
    assert (report.examined, report.resolved, report.errors, report.stuck) == (2, {"FAILED": 1, "SUCCEEDED": 1}, {}, [])
    assert (store.refunds[failing].status, store.refunds[failing].failure_code) == (
        "FAILED",
        "expired_or_canceled_card",
    )
    assert (store.charges["po_1"].refunded, store.charges["po_2"].refunded) == (0, 300)
    assert store.refunds[succeeding].status == "SUCCEEDED"
    assert movements(wallet) == [("debit", succeeding, 300)]
    assert queue.messages == []

    # And the next sweep finds nothing left
    again = sweep(store, psp, T0 + 2 * RESOLVE_AFTER + timedelta(seconds=2), queue, wallet)
    assert (again.examined, len(movements(wallet))) == (0, 1)


def test_a_refund_whose_psp_answer_was_lost_is_settled_without_asking_for_a_second_refund() -> None:
    # Given a refund the PSP made, whose answer never reached us (the executor died after the call)
    store, psp, queue, wallet = MemoryRefundStore(iso(T0)), ScriptedRefundPsp("succeeded"), Recorder(), Recorder()
    refund_id = refund_of(store, "po_1", 1000, "k1")
    psp.refund(idempotency_key=refund_id, charge_reference="ch_1", amount=1000)
    assert store.refunds[refund_id].psp_status is None

    # When the sweep runs
    report = sweep(store, psp, T0 + RESOLVE_AFTER + timedelta(seconds=1), queue, wallet)

    # Then it took the PSP's answer: SUCCEEDED, debited once, and the PSP was not asked again
    assert report.resolved == {"SUCCEEDED": 1}
    assert (store.refunds[refund_id].status, psp.calls) == ("SUCCEEDED", [refund_id])
    assert movements(wallet) == [("debit", refund_id, 1000)]


def test_a_refund_the_psp_never_got_waits_for_its_message_then_is_sent_again_once_per_window() -> None:
    # Given a refund whose message never got the request through (the PSP has none)
    store, psp, queue, wallet = MemoryRefundStore(iso(T0)), ScriptedRefundPsp("succeeded"), Recorder(), Recorder()
    refund_id = refund_of(store, "po_1", 500, "k1")

    # When the sweep runs while the refund queue may still retry its message: it waits
    waiting = sweep(store, psp, T0 + RETRY_WINDOW - timedelta(seconds=1), queue, wallet)
    assert (waiting.still_pending, waiting.sent_again, queue.messages) == ([refund_id], [], [])

    # When it runs after that: the refund is sent to the executor again, once
    late = T0 + RETRY_WINDOW + timedelta(seconds=1)
    report = sweep(store, psp, late, queue, wallet)
    assert (report.sent_again, report.still_pending) == ([refund_id], [refund_id])
    assert queue.messages == [ExecuteRefund(refund_id=refund_id, payment_order_id="po_1")]
    assert store.refunds[refund_id].updated_at == iso(late)

    # And sweeps within the next window do not send it again
    next_day = sweep(store, psp, late + RETRY_WINDOW - timedelta(seconds=1), queue, wallet)
    assert (next_day.examined, next_day.sent_again, len(queue.messages)) == (1, [], 1)

    # When the executor runs the message twice (the sent-again one and a late redelivery), it is one refund
    executed(store, psp, refund_id, wallet)
    executed(store, psp, refund_id, wallet)
    assert (psp.calls, store.refunds[refund_id].status) == ([refund_id], "SUCCEEDED")
    assert movements(wallet) == [("debit", refund_id, 500), ("debit", refund_id, 500)]  # the wallet applies once


def test_a_crash_between_sending_again_and_noting_it_sends_a_duplicate_never_none() -> None:
    store, psp, wallet = MemoryRefundStore(iso(T0)), ScriptedRefundPsp("succeeded"), Recorder()
    refund_id = refund_of(store, "po_1", 500, "k1")
    late = T0 + RETRY_WINDOW + timedelta(seconds=1)

    sent = Recorder()
    original = store.mark_sent_again

    def dies(refund_id: str) -> Refund:
        raise ProcessDied

    store.mark_sent_again = dies  # type: ignore[method-assign]
    with pytest.raises(ProcessDied):
        sweep(store, psp, late, sent, wallet)
    store.mark_sent_again = original  # type: ignore[method-assign]
    # the message went out before the crash, and the refund was not noted: the next sweep sends it again
    report = sweep(store, psp, late + timedelta(minutes=5), sent, wallet)
    assert (len(sent.messages), report.sent_again) == (2, [refund_id])


def test_a_crash_between_deciding_and_handing_on_leaves_the_debit_to_the_stream() -> None:
    # Given the sweep dies after recording SUCCEEDED, before its own hand-off
    store, psp, queue = MemoryRefundStore(iso(T0)), ScriptedRefundPsp("pending"), Recorder()
    refund_id = refund_of(store, "po_1", 700, "k1")
    executed(store, psp, refund_id, Recorder())
    psp.decide(refund_id, "succeeded")
    with pytest.raises(ProcessDied):
        sweep(store, psp, T0 + RESOLVE_AFTER + timedelta(seconds=1), queue, DyingPublisher())  # type: ignore[arg-type]

    # Then the refund is SUCCEEDED and debited-due: the refunds table's stream (dispatch_handler) hands the
    # debit on from that change, so the sweep need not see it again
    refund = store.refunds[refund_id]
    assert (refund.status, refund.debited) == ("SUCCEEDED", True)
    stream_wallet = Recorder()
    domain.hand_on(refund, wallet=stream_wallet)
    assert movements(stream_wallet) == [("debit", refund_id, 700)]


def test_one_failing_lookup_does_not_block_the_others_and_old_refunds_count_as_stuck() -> None:
    # Given three pending refunds: one whose lookup fails, one the PSP still holds pending, one decided
    store, psp, queue, wallet = MemoryRefundStore(iso(T0)), ScriptedRefundPsp("pending"), Recorder(), Recorder()
    broken, held, decided = (refund_of(store, f"po_{n}", 100, f"k{n}") for n in (1, 2, 3))
    for refund_id in (broken, held, decided):
        executed(store, psp, refund_id, wallet)
    psp.decide(decided, "succeeded")
    psp.broken.add(broken)

    # When the sweep runs a day and a second after they were asked for
    report = sweep(store, psp, T0 + STUCK_AFTER + timedelta(seconds=1), queue, wallet)

    # Then the decided one is settled; the broken one is reported; both still open ones count as stuck
    assert report.resolved == {"SUCCEEDED": 1}
    assert list(report.errors) == [broken] and "PspUnavailable" in report.errors[broken]
    assert report.still_pending == [held]
    assert sorted(report.stuck) == sorted([broken, held])
    assert (store.refunds[broken].status, store.refunds[held].status) == ("PENDING", "PENDING")


def test_a_verdict_that_lands_between_the_sweeps_read_and_its_write_is_applied_once() -> None:
    # Given the webhook settles the refund FAILED after the sweep read it PENDING, and the PSP now says failed
    store, psp, queue, wallet = MemoryRefundStore(iso(T0)), ScriptedRefundPsp("pending"), Recorder(), Recorder()
    refund_id = refund_of(store, "po_1", 600, "k1")
    executed(store, psp, refund_id, wallet)
    psp.decide(refund_id, "failed", "expired_or_canceled_card")
    stale_read = store.pending_since

    def read_then_webhook(*, updated_before: str) -> list:  # type: ignore[type-arg]
        found = stale_read(updated_before=updated_before)
        domain.settle_refund(
            refund_id, "failed", psp_refund_id=None, failure_code="expired_or_canceled_card", store=store, wallet=wallet
        )
        return found

    store.pending_since = read_then_webhook  # type: ignore[method-assign]
    report = sweep(store, psp, T0 + RESOLVE_AFTER + timedelta(seconds=1), queue, wallet)

    # Then the reservation was released once (the charge holds 0, not -600), and no money moved
    assert report.resolved == {"FAILED": 1}
    assert (store.refunds[refund_id].status, store.charges["po_1"].refunded, movements(wallet)) == ("FAILED", 0, [])
