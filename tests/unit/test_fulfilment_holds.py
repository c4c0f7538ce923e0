"""Fulfilment holds, the pure parts: where a held order's share lands, the journals of a hold's release and of
a refund that takes from it (each within the ledger's postings policy), the sweep's due days, and the
fulfilment request's answers. The wallet's conditional writes are tested against moto in
tests/integration/test_fulfilment_holds.py, and the whole path in tests/e2e/test_fulfilment_holds.py."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from functions.common.errors import Conflict, NotFound
from functions.common.events import ExecuteOrder, JournalPosting, OrderCharged, PostingLine, ReleaseHold
from functions.common.refund_events import RefundMoney
from functions.executor.domain import OrderExecution
from functions.ledger import domain as ledger
from functions.ledger.policy import PostingRefused, check_posting
from functions.payment.domain import request_fingerprint
from functions.payment.fulfilment import fulfil_order
from functions.payment.models import PaymentRequest
from functions.wallet.holds import (
    Hold,
    HoldNotCredited,
    due_days,
    held_share,
    release_hold,
    release_posting,
    sweep_due_holds,
)
from functions.wallet.refunds import refund_posting
from tests.support.fakes import Recorder

CREDITED_AT = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)


def charged(hold: str = "until_fulfilled", amount: int = 10_000, fee: int = 1_500) -> OrderCharged:
    return OrderCharged(
        payment_id="pay_1",
        payment_order_id="po_1",
        seller_id="seller_a",
        amount=amount,
        application_fee=fee,
        hold=hold,
        currency="EUR",
        psp_reference="ch_1",
    )


def lines(posting: JournalPosting) -> list[tuple[str, str, int]]:
    return [(line.account, line.direction, line.amount) for line in posting.lines]


def test_a_held_share_waits_the_hold_period_and_an_unheld_one_does_not() -> None:
    assert held_share(charged("none"), credited_at=CREDITED_AT, hold_days=7) is None
    share = held_share(charged(), credited_at=CREDITED_AT, hold_days=7)
    assert share is not None
    assert (share.release_after, share.due_day) == ("2026-12-07T23:30:00.000000+00:00", "2026-12-07")
    # A hold period of 0 days is due at once
    now = held_share(charged(), credited_at=CREDITED_AT, hold_days=0)
    assert now is not None and (now.release_after, now.due_day) == ("2026-11-30T23:30:00.000000+00:00", "2026-11-30")


def test_the_charge_journal_of_a_held_order_owes_the_share_as_pending() -> None:
    held = ledger.charge_journal(charged(), created_at="t")
    assert [(e.account, e.direction, e.amount) for e in held] == [
        ("psp_receivable", "debit", 10_000),
        ("seller_pending:seller_a", "credit", 8_500),
        ("platform_revenue", "credit", 1_500),
    ]
    unheld = ledger.charge_journal(charged("none"), created_at="t")
    assert [(e.account, e.amount) for e in unheld][1] == ("seller_payable:seller_a", 8_500)
    # The same journal id either way: a hold changes where the share lands, never which journal books it
    assert held[0].journal_id == unheld[0].journal_id


def test_messages_sent_before_holds_existed_read_as_no_hold() -> None:
    old = charged("none").model_dump(mode="json")
    del old["hold"]
    assert OrderCharged.model_validate(old).hold == "none"
    execute = ExecuteOrder(
        payment_id="p",
        payment_order_id="po_1",
        seller_id="s",
        buyer_id="b",
        amount=5,
        currency="EUR",
        payment_method="tok_visa",
    )
    assert execute.hold == "none"
    with pytest.raises(ValueError, match="hold"):
        OrderCharged.model_validate(old | {"hold": "until_shipped"})


def test_a_payment_body_without_a_hold_keeps_its_fingerprint_and_a_hold_changes_it() -> None:
    def body(**order: object) -> PaymentRequest:
        return PaymentRequest.model_validate(
            {
                "checkout_id": "co_1",
                "buyer_id": "b",
                "currency": "EUR",
                "payment_method": "tok_visa",
                "orders": [{"payment_order_id": "po_1", "seller_id": "s", "amount": 100, **order}],
            }
        )

    assert request_fingerprint(body()) == request_fingerprint(body(hold="none"))
    assert request_fingerprint(body()) != request_fingerprint(body(hold="until_fulfilled"))


def test_the_release_journal_moves_the_released_amount_from_pending_to_payable() -> None:
    released = Hold(
        seller_id="seller_a", payment_order_id="po_1", currency="EUR", status="RELEASED", pending=0, released=8_500
    )
    posting = release_posting(released)
    assert posting is not None
    assert (posting.producer, posting.kind, posting.business_id, posting.payment_order_id, posting.reference) == (
        "wallet",
        "hold_release",
        "po_1",
        "po_1",
        "po_1",
    )
    assert lines(posting) == [("seller_pending:seller_a", "debit", 8_500), ("seller_payable:seller_a", "credit", 8_500)]
    check_posting(posting)
    # Nothing left to release (refunds took it all), or not released: no journal, never an empty one
    assert release_posting(released.model_copy(update={"released": 0})) is None
    assert release_posting(released.model_copy(update={"status": "HELD", "pending": 8_500, "released": 0})) is None


@pytest.mark.parametrize(
    "change",
    [
        {"producer": "payouts"},
        {"business_id": "po_2"},  # another order's id than the one it books against
        {"reference": "po_2"},
        {"payment_order_id": None},
        {
            "lines": [
                PostingLine(account="seller_pending:seller_a", direction="debit", amount=5),
                PostingLine(account="seller_payable:seller_b", direction="credit", amount=5),
            ]
        },
        {
            "lines": [
                PostingLine(account="psp_receivable", direction="debit", amount=5),
                PostingLine(account="seller_payable:seller_a", direction="credit", amount=5),
            ]
        },
    ],
)
def test_release_journals_outside_the_wallets_authority_are_refused(change: dict[str, object]) -> None:
    released = Hold(seller_id="seller_a", payment_order_id="po_1", currency="EUR", status="RELEASED", released=5)
    posting = release_posting(released)
    assert posting is not None
    with pytest.raises(PostingRefused):
        check_posting(posting.model_copy(update=change))


def refund_money(movement: str, *, amount: int = 4_000, fee_refunded: int = 600) -> RefundMoney:
    return RefundMoney(
        refund_id="rf_" + "0" * 32,
        payment_order_id="po_1",
        payment_id="pay_1",
        seller_id="seller_a",
        amount=amount,
        application_fee_refunded=fee_refunded,
        currency="EUR",
        movement=movement,
    )


def test_a_refund_of_a_held_order_books_its_pending_part_to_seller_pending() -> None:
    # A refund of 4,000 with a fee share of 600: the seller's 3,400, of which 2,500 still held
    debit = refund_posting(refund_money("debit"), pending=2_500)
    assert lines(debit) == [
        ("seller_payable:seller_a", "debit", 900),
        ("seller_pending:seller_a", "debit", 2_500),
        ("platform_revenue", "debit", 600),
        ("psp_receivable", "credit", 4_000),
    ]
    restore = refund_posting(refund_money("restore"), pending=2_500)
    assert lines(restore) == [
        ("psp_receivable", "debit", 4_000),
        ("seller_payable:seller_a", "credit", 900),
        ("seller_pending:seller_a", "credit", 2_500),
        ("platform_revenue", "credit", 600),
    ]
    # All of it from the hold: no seller_payable line
    whole = refund_posting(refund_money("debit"), pending=3_400)
    assert lines(whole) == [
        ("seller_pending:seller_a", "debit", 3_400),
        ("platform_revenue", "debit", 600),
        ("psp_receivable", "credit", 4_000),
    ]
    for posting in (debit, restore, whole):
        check_posting(posting)


class StoredHolds:
    """The wallet's hold store as seen by the domain: a hold per order, and the due index by day."""

    def __init__(self, holds: dict[str, Hold] | None = None, due: dict[str, list[tuple[str, str]]] | None = None):
        self.holds = holds or {}
        self.due = due or {}
        self.asked_days: list[tuple[str, str]] = []

    def release_once(self, *, seller_id: str, payment_order_id: str, reason: str) -> Hold | None:
        hold = self.holds.get(payment_order_id)
        if hold is not None and hold.status == "HELD":
            hold = self.holds[payment_order_id] = hold.model_copy(
                update={"status": "RELEASED", "released": hold.pending}
            )
        return hold

    def due_holds(self, due_day: str, *, until: str) -> Iterator[tuple[str, str]]:
        self.asked_days.append((due_day, until))
        yield from self.due.get(due_day, [])


class BatchRecorder:
    def __init__(self) -> None:
        self.batches: list[list[BaseModel]] = []

    def publish_many(self, messages: Sequence[BaseModel]) -> None:
        self.batches.append(list(messages))


def release(reason: str = "fulfilled") -> ReleaseHold:
    return ReleaseHold(payment_order_id="po_1", seller_id="seller_a", reason=reason)


def test_a_release_before_the_credit_is_retried_and_a_redelivered_one_resends_the_same_journal() -> None:
    store, ledger_queue = StoredHolds(), Recorder()
    with pytest.raises(HoldNotCredited):
        release_hold(release(), store=store, ledger=ledger_queue)
    assert ledger_queue.messages == []

    store.holds["po_1"] = Hold(seller_id="seller_a", payment_order_id="po_1", currency="EUR", status="HELD", pending=7)
    first = release_hold(release(), store=store, ledger=ledger_queue)
    again = release_hold(release("expired"), store=store, ledger=ledger_queue)
    assert (first.status, first.released, again.released) == ("RELEASED", 7, 7)
    assert len(ledger_queue.messages) == 2 and ledger_queue.messages[0] == ledger_queue.messages[1]


def test_a_release_of_an_order_credited_without_a_hold_moves_nothing() -> None:
    store, ledger_queue = StoredHolds(), Recorder()
    store.holds["po_1"] = Hold(seller_id="seller_a", payment_order_id="po_1", currency="EUR", status="NONE")
    assert release_hold(release(), store=store, ledger=ledger_queue).status == "NONE"
    assert ledger_queue.messages == []


def test_the_sweep_reads_every_day_back_to_its_lookback_and_asks_each_due_hold_once() -> None:
    now = datetime(2026, 12, 7, 23, 45, tzinfo=UTC)
    assert due_days(now, lookback_days=2) == ["2026-12-05", "2026-12-06", "2026-12-07"]
    store = StoredHolds(due={"2026-12-05": [("s1", "po_old")], "2026-12-07": [("s2", "po_a"), ("s3", "po_b")]})
    queue = BatchRecorder()

    asked = sweep_due_holds(now, lookback_days=2, store=store, holds_queue=queue)

    assert asked == 3
    assert [m for batch in queue.batches for m in batch] == [
        ReleaseHold(payment_order_id="po_old", seller_id="s1", reason="expired"),
        ReleaseHold(payment_order_id="po_a", seller_id="s2", reason="expired"),
        ReleaseHold(payment_order_id="po_b", seller_id="s3", reason="expired"),
    ]
    assert store.asked_days == [(day, "2026-12-07T23:45:00.000000+00:00") for day in due_days(now, lookback_days=2)]


class Executions:
    """The executor's records, and the order ids payments own (some not claimed by the executor yet)."""

    def __init__(self, *orders: OrderExecution, unclaimed: tuple[str, ...] = ()) -> None:
        self.orders = {o.payment_order_id: o for o in orders}
        self.unclaimed = set(unclaimed)

    def order(self, payment_order_id: str) -> OrderExecution | None:
        return self.orders.get(payment_order_id)

    def accepted(self, payment_order_id: str) -> bool:
        return payment_order_id in self.orders or payment_order_id in self.unclaimed


def execution(status: str = "SUCCEEDED", hold: str = "until_fulfilled") -> OrderExecution:
    return OrderExecution(
        payment_order_id="po_1",
        payment_id="pay_1",
        seller_id="seller_a",
        amount=10_000,
        application_fee=1_500,
        hold=hold,
        currency="EUR",
        status=status,
    )


def test_fulfilment_asks_the_wallet_to_release_a_charged_held_order() -> None:
    queue = Recorder()
    answer = fulfil_order("po_1", orders=Executions(execution()), holds_queue=queue)
    assert answer.model_dump() == {
        "payment_order_id": "po_1",
        "payment_id": "pay_1",
        "seller_id": "seller_a",
        "amount": 10_000,
        "application_fee": 1_500,
        "currency": "EUR",
        "hold": "until_fulfilled",
        "release": "requested",
    }
    assert queue.messages == [release()]


def test_fulfilment_of_an_accepted_order_the_executor_has_not_claimed_is_not_charged_yet() -> None:
    queue = Recorder()
    with pytest.raises(Conflict) as raised:
        fulfil_order("po_1", orders=Executions(unclaimed=("po_1",)), holds_queue=queue)
    assert (raised.value.code, raised.value.param) == ("order_not_charged", "payment_order_id")
    assert queue.messages == []


@pytest.mark.parametrize(
    ("order", "error", "code"),
    [
        (None, NotFound, "resource_missing"),
        (execution(hold="none"), Conflict, "order_not_held"),
        (execution(status="PENDING"), Conflict, "order_not_charged"),
        (execution(status="EXECUTING"), Conflict, "order_not_charged"),
        (execution(status="FAILED"), Conflict, "order_not_charged"),
    ],
)
def test_fulfilment_of_an_unknown_unheld_or_uncharged_order_is_refused_and_sends_nothing(
    order: OrderExecution | None, error: type[Exception], code: str
) -> None:
    queue = Recorder()
    with pytest.raises(error) as raised:
        fulfil_order("po_1", orders=Executions(*([order] if order else [])), holds_queue=queue)
    assert (getattr(raised.value, "code", None), getattr(raised.value, "param", None)) == (code, "payment_order_id")
    assert queue.messages == []
