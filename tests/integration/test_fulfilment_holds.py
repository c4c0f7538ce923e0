"""Fulfilment holds against the template's wallet table and queues in moto: the wallet's credit, release,
refund and restore workers and the hold sweep, each through its own handler.

After every step the wallet equals the books bucket by bucket: what the workers handed to the ledger (the
charge journal of each OrderCharged, every JournalPosting), summed per account, is the wallet's `available`
on seller_payable and its `pending` on seller_pending. Every message is delivered twice."""

from __future__ import annotations

import importlib
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest

from functions.common.clock import iso
from functions.common.events import JournalPosting, OrderCharged, ReleaseHold
from functions.common.ids import deterministic_id
from functions.common.money import TWELVE_DIGIT_AMOUNT_MINOR
from functions.common.refund_events import RefundMoney
from functions.ledger import domain as ledger
from functions.ledger.policy import check_posting
from functions.wallet import keys
from functions.wallet.domain import Balance
from functions.wallet.holds import Hold
from functions.wallet.store import DynamoWalletStore, HoldChanged
from local_stack.deploy import LocalCloud
from tests.integration.conftest import context, sqs_event

SELLER = "seller_h"
ORDER = "po_held"
REFUND_ID = "rf_" + "b" * 32


class Workers:
    """The wallet's handlers in this process, each with its own function's environment."""

    def __init__(
        self, cloud: LocalCloud, use_function_env: Callable[[str], None], caplog: pytest.LogCaptureFixture
    ) -> None:
        self.cloud = cloud
        self.caplog = caplog
        for handler in (
            "functions.wallet.handler.handler",
            "functions.wallet.refund_handler.handler",
            "functions.wallet.holds_handler.handler",
            "functions.wallet.holds_handler.sweep_handler",
        ):
            use_function_env(handler)
        self.credit = self._fresh("functions.wallet.handler", "_credit_ports")
        self.refunds = self._fresh("functions.wallet.refund_handler", "_ports")
        self.holds = self._fresh("functions.wallet.holds_handler", "_release_ports", "_sweep_ports")
        self.store = DynamoWalletStore(self.env("functions.wallet.handler.handler")["WALLET_TABLE_NAME"])
        self.books: Counter[str] = Counter()
        self.journals: dict[str, list[tuple[str, str, int]]] = {}

    @staticmethod
    def _fresh(module: str, *caches: str) -> ModuleType:
        loaded = importlib.import_module(module)
        for cache in caches:
            getattr(loaded, cache).cache_clear()
        return loaded

    def env(self, handler: str) -> dict[str, str]:
        return next(f.environment for f in self.cloud.functions.values() if f.handler == handler)

    def deliver(self, handler: Callable[..., Any], message: Any, *, times: int = 2) -> list[dict[str, str]]:
        """Deliver the message `times` (in one batch), sent just now; returns the failed records."""
        event = sqs_event(*[message.model_dump_json()] * times)
        for record in event["Records"]:  # young: a failure is retried (backoff by age), not dead-lettered
            record["attributes"]["SentTimestamp"] = str(int(time.time() * 1000))
        result = handler(event, context())
        self.book()
        return list(result["batchItemFailures"])

    def waits(self, handler: Callable[..., Any], message: Any) -> str:
        """Deliver the message once, expecting it to wait (fail transiently, to be retried later); returns
        the error it waits on. Nothing it would move has moved."""
        self.caplog.clear()
        assert self.deliver(handler, message, times=1) == [{"itemIdentifier": "m0"}]
        waited = [
            (getattr(r, "failure", None), getattr(r, "error_type", None))
            for r in self.caplog.records
            if r.getMessage() == "record failed transiently; retried later"
        ]
        assert len(waited) == 1 and waited[0][0] == "transient", waited
        return str(waited[0][1])

    def book(self) -> None:
        """Take what the workers handed to the ledger and book each journal id once, as the ledger does."""
        sqs = boto3.client("sqs")
        for handler, name in (
            ("functions.wallet.handler.handler", "LEDGER_QUEUE_URL"),
            ("functions.wallet.refund_handler.handler", "LEDGER_POSTINGS_QUEUE_URL"),
        ):
            url = self.env(handler)[name]
            while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                for raw in messages:
                    self._book(json.loads(raw["Body"]))
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=raw["ReceiptHandle"])

    def _book(self, body: dict[str, Any]) -> None:
        if "psp_reference" in body:
            entries = ledger.charge_journal(OrderCharged.model_validate(body), created_at="t")
        else:
            posting = JournalPosting.model_validate(body)
            check_posting(posting)
            entries = ledger.posting_journal(posting, created_at="t")
        lines: list[tuple[str, str, int]] = [(e.account, e.direction, e.amount) for e in entries]
        journal_id = entries[0].journal_id
        if journal_id in self.journals:
            # The same journal id again is the very same journal: a redelivery re-sends the first split
            assert lines == self.journals[journal_id]
            return
        self.journals[journal_id] = lines
        for entry in entries:
            self.books[entry.account] += entry.amount if entry.direction == "credit" else -entry.amount

    def balance(self, currency: str = "EUR") -> Balance:
        return self.store.balances(SELLER).get(currency, Balance())

    def assert_wallet(self, *, available: int, pending: int, currency: str = "EUR") -> None:
        wallet = self.balance(currency)
        assert (wallet.available, wallet.pending, wallet.reserved) == (available, pending, 0)
        assert (self.books[f"seller_payable:{SELLER}"], self.books[f"seller_pending:{SELLER}"]) == (available, pending)

    def hold(self, order: str = ORDER) -> Hold | None:
        return self.store.hold(SELLER, order)


@pytest.fixture
def workers(cloud: LocalCloud, use_function_env: Callable[[str], None], caplog: pytest.LogCaptureFixture) -> Workers:
    return Workers(cloud, use_function_env, caplog)


def charge(
    order: str = ORDER, *, amount: int = 10_000, fee: int = 1_500, hold: str = "until_fulfilled", currency: str = "EUR"
) -> OrderCharged:
    return OrderCharged(
        payment_id="pay_h",
        payment_order_id=order,
        seller_id=SELLER,
        amount=amount,
        application_fee=fee,
        hold=hold,
        currency=currency,
        psp_reference="ch_" + order,
    )


def release(reason: str = "fulfilled", order: str = ORDER) -> ReleaseHold:
    return ReleaseHold(payment_order_id=order, seller_id=SELLER, reason=reason)


def refund(movement: str, *, amount: int = 4_000, fee_refunded: int = 600, refund_id: str = REFUND_ID) -> RefundMoney:
    return RefundMoney(
        refund_id=refund_id,
        payment_order_id=ORDER,
        payment_id="pay_h",
        seller_id=SELLER,
        amount=amount,
        application_fee_refunded=fee_refunded,
        currency="EUR",
        movement=movement,
    )


def test_a_held_share_waits_in_pending_until_one_release_moves_it(workers: Workers) -> None:
    # Given a held order of 10,000 with a commission of 1,500, credited twice
    before = datetime.now(UTC)
    assert workers.deliver(workers.credit.handler, charge()) == []

    # Then the seller's 8,500 is pending, not available, and the hold is on the due index for its day
    workers.assert_wallet(available=0, pending=8_500)
    hold = workers.hold()
    assert hold is not None and (hold.status, hold.pending, hold.released) == ("HELD", 8_500, 0)
    due = before + timedelta(days=7)  # the function's hold period: 7 days
    assert list(workers.store.due_holds(due.date().isoformat(), until=iso(due - timedelta(minutes=1)))) == []
    later = due + timedelta(minutes=1)
    assert list(workers.store.due_holds(later.date().isoformat(), until=iso(later))) == [(SELLER, ORDER)]
    # And it is not due a payout yet
    assert workers.store.balances(SELLER)["EUR"].model_dump() == {"available": 0, "reserved": 0, "pending": 8_500}

    # When fulfilment and the sweep both ask to release it, each delivered twice
    assert workers.deliver(workers.holds.handler, release("fulfilled")) == []
    assert workers.deliver(workers.holds.handler, release("expired")) == []

    # Then it moved once, and left the due index
    workers.assert_wallet(available=8_500, pending=0)
    hold = workers.hold()
    assert hold is not None and (hold.status, hold.pending, hold.released) == ("RELEASED", 8_500, 8_500)
    assert list(workers.store.due_holds(later.date().isoformat(), until=iso(later))) == []
    assert workers.journals[deterministic_id("jr", "hold_release", ORDER)] == [
        (f"seller_pending:{SELLER}", "debit", 8_500),
        (f"seller_payable:{SELLER}", "credit", 8_500),
    ]


def test_an_order_without_a_hold_is_available_at_once_and_a_release_moves_nothing(workers: Workers) -> None:
    assert workers.deliver(workers.credit.handler, charge(hold="none")) == []
    workers.assert_wallet(available=8_500, pending=0)
    assert workers.deliver(workers.holds.handler, release()) == []
    workers.assert_wallet(available=8_500, pending=0)
    hold = workers.hold()
    assert hold is not None and hold.status == "NONE"


def test_a_release_before_the_credit_fails_its_record_and_moves_nothing(workers: Workers) -> None:
    # (it is retried with a backoff by age, until the credit lands)
    assert workers.waits(workers.holds.handler, release()) == "HoldNotCredited"
    assert workers.store.balances(SELLER) == {}
    # The credit lands, then the retried release
    workers.deliver(workers.credit.handler, charge())
    assert workers.deliver(workers.holds.handler, release(), times=1) == []
    workers.assert_wallet(available=8_500, pending=0)


def test_a_refund_takes_from_the_hold_first_and_a_restore_after_the_release_goes_to_available(
    workers: Workers,
) -> None:
    workers.deliver(workers.credit.handler, charge())

    # A refund of 4,000 giving back 600 of the commission: the seller's 3,400 comes out of the hold
    assert workers.deliver(workers.refunds.handler, refund("debit")) == []
    workers.assert_wallet(available=0, pending=5_100)

    # The release moves what is left
    workers.deliver(workers.holds.handler, release())
    workers.assert_wallet(available=5_100, pending=0)
    hold = workers.hold()
    assert hold is not None and hold.released == 5_100

    # The PSP fails the refund afterwards: the hold is gone, so the 3,400 comes back to available
    assert workers.deliver(workers.refunds.handler, refund("restore")) == []
    workers.assert_wallet(available=8_500, pending=0)
    assert workers.books["platform_revenue"] == 1_500


def test_a_restore_while_the_hold_lasts_gives_the_hold_back_its_part(workers: Workers) -> None:
    workers.deliver(workers.credit.handler, charge())
    # A refund larger than the hold: 8,500 held, the seller's part 9,000 (fee share 1,000 of 10,000)
    workers.deliver(workers.refunds.handler, refund("debit", amount=10_000, fee_refunded=1_000))
    workers.assert_wallet(available=-500, pending=0)

    workers.deliver(workers.refunds.handler, refund("restore", amount=10_000, fee_refunded=1_000))

    workers.assert_wallet(available=0, pending=8_500)
    hold = workers.hold()
    assert hold is not None and (hold.status, hold.pending) == ("HELD", 8_500)
    # And the release then moves the whole share again
    workers.deliver(workers.holds.handler, release("expired"))
    workers.assert_wallet(available=8_500, pending=0)


def test_a_restore_before_its_debit_of_a_held_order_waits_for_the_debit(workers: Workers) -> None:
    workers.deliver(workers.credit.handler, charge())
    assert workers.waits(workers.refunds.handler, refund("restore")) == "RestoreBeforeDebit"
    workers.assert_wallet(available=0, pending=8_500)

    workers.deliver(workers.refunds.handler, refund("debit"))
    assert workers.deliver(workers.refunds.handler, refund("restore")) == []
    workers.assert_wallet(available=0, pending=8_500)


def test_a_refund_debit_before_the_held_orders_credit_waits_and_then_takes_from_the_hold(workers: Workers) -> None:
    # The refund API needs only the executor's SUCCEEDED: the debit can reach the wallet before the credit
    assert workers.waits(workers.refunds.handler, refund("debit")) == "CreditNotStored"
    assert workers.store.balances(SELLER) == {}

    workers.deliver(workers.credit.handler, charge())
    assert workers.deliver(workers.refunds.handler, refund("debit")) == []
    workers.assert_wallet(available=0, pending=5_100)


def test_a_restore_and_debit_before_the_held_orders_credit_leave_the_hold_whole(workers: Workers) -> None:
    # A refund that succeeded, then failed at the PSP: its restore and debit both arrive before the credit
    assert workers.waits(workers.refunds.handler, refund("restore")) == "CreditNotStored"
    workers.deliver(workers.credit.handler, charge())
    assert workers.waits(workers.refunds.handler, refund("restore")) == "RestoreBeforeDebit"
    workers.deliver(workers.refunds.handler, refund("debit"))
    workers.deliver(workers.refunds.handler, refund("restore"))

    # Nothing of the unfulfilled order became payable
    workers.assert_wallet(available=0, pending=8_500)
    hold = workers.hold()
    assert hold is not None and (hold.status, hold.pending) == ("HELD", 8_500)
    workers.deliver(workers.holds.handler, release())
    workers.assert_wallet(available=8_500, pending=0)


def test_a_refund_of_an_order_credited_without_a_hold_also_waits_for_the_credit(workers: Workers) -> None:
    assert workers.waits(workers.refunds.handler, refund("debit")) == "CreditNotStored"
    workers.deliver(workers.credit.handler, charge(hold="none"))
    workers.deliver(workers.refunds.handler, refund("debit"))
    workers.deliver(workers.refunds.handler, refund("restore"))
    workers.assert_wallet(available=8_500, pending=0)


class RacingStore(DynamoWalletStore):
    """A wallet store in which `race` runs once, right after the first read of the hold: another worker's
    write lands between this one's read and its conditional write."""

    def __init__(self, table_name: str, race: Callable[[], object]) -> None:
        super().__init__(table_name)
        self.race: Callable[[], object] | None = race
        self.reads = 0

    def hold(self, seller_id: str, payment_order_id: str) -> Hold | None:
        found = super().hold(seller_id, payment_order_id)
        self.reads += 1
        if self.race is not None:
            race, self.race = self.race, None
            race()
        return found


def test_a_release_landing_between_a_refunds_read_and_write_makes_the_refund_read_again(
    workers: Workers,
) -> None:
    workers.deliver(workers.credit.handler, charge())
    table_name = workers.store.table_name
    racing = RacingStore(
        table_name,
        race=lambda: DynamoWalletStore(table_name).release_once(
            seller_id=SELLER, payment_order_id=ORDER, reason="fulfilled"
        ),
    )

    moved = racing.refund_debit_once(
        seller_id=SELLER, currency="EUR", payment_order_id=ORDER, amount=3_400, applied_marker="refund#" + REFUND_ID
    )

    # The refund read HELD with 8,500, lost to the release, read again: it came from available
    assert (moved.applied_now, moved.pending, racing.reads) == (True, 0, 2)
    assert workers.balance().model_dump() == {"available": 5_100, "reserved": 0, "pending": 0}
    hold = workers.hold()
    assert hold is not None and hold.released == 8_500


def test_a_refund_landing_between_a_releases_read_and_write_makes_the_release_read_again(
    workers: Workers,
) -> None:
    workers.deliver(workers.credit.handler, charge())
    table_name = workers.store.table_name
    racing = RacingStore(
        table_name,
        race=lambda: DynamoWalletStore(table_name).refund_debit_once(
            seller_id=SELLER, currency="EUR", payment_order_id=ORDER, amount=3_400, applied_marker="refund#" + REFUND_ID
        ),
    )

    released = racing.release_once(seller_id=SELLER, payment_order_id=ORDER, reason="expired")

    # The release read 8,500, lost to the refund, read again: it moved the 5,100 left
    assert released is not None and (released.status, released.released, racing.reads) == ("RELEASED", 5_100, 2)
    assert workers.balance().model_dump() == {"available": 5_100, "reserved": 0, "pending": 0}


def test_a_hold_that_keeps_changing_is_left_to_the_queues_retry(workers: Workers) -> None:
    workers.deliver(workers.credit.handler, charge())
    table_name = workers.store.table_name

    class AlwaysRacing(DynamoWalletStore):
        taken = 0

        def hold(self, seller_id: str, payment_order_id: str) -> Hold | None:
            found = super().hold(seller_id, payment_order_id)
            AlwaysRacing.taken += 1
            DynamoWalletStore(table_name).refund_debit_once(
                seller_id=SELLER,
                currency="EUR",
                payment_order_id=ORDER,
                amount=1,
                applied_marker=f"refund#rf_{AlwaysRacing.taken:032d}",
            )
            return found

    with pytest.raises(HoldChanged):
        AlwaysRacing(table_name).release_once(seller_id=SELLER, payment_order_id=ORDER, reason="expired")
    # Nothing was released; each racing refund took its 1 from the hold
    hold = workers.hold()
    assert hold is not None and (hold.status, hold.pending) == ("HELD", 8_500 - AlwaysRacing.taken)
    assert workers.balance().pending == 8_500 - AlwaysRacing.taken


def test_the_sweep_asks_for_the_release_of_holds_past_their_period_only(workers: Workers) -> None:
    workers.deliver(workers.credit.handler, charge("po_due"))
    workers.deliver(workers.credit.handler, charge("po_later"))
    sqs = boto3.client("sqs")
    holds_queue = workers.env("functions.wallet.holds_handler.sweep_handler")["WALLET_HOLDS_QUEUE_URL"]
    # po_later's hold is released by fulfilment first: off the index
    workers.deliver(workers.holds.handler, release("fulfilled", order="po_later"))

    def sweep(at: datetime) -> int:
        return int(
            workers.holds.sweep_handler({"time": at.strftime("%Y-%m-%dT%H:%M:%SZ")}, context())["releases_asked"]
        )

    now = datetime.now(UTC)
    assert sweep(now + timedelta(days=6)) == 0
    assert sweep(now + timedelta(days=7, minutes=5)) == 1
    sent = sqs.receive_message(QueueUrl=holds_queue, MaxNumberOfMessages=10)["Messages"]
    assert [ReleaseHold.model_validate_json(m["Body"]) for m in sent] == [release("expired", order="po_due")]
    # A sweep that was down for weeks still finds it (its lookback is 30 days)
    assert sweep(now + timedelta(days=30)) == 1
    for message in sent:
        assert workers.deliver(workers.holds.handler, ReleaseHold.model_validate_json(message["Body"])) == []
    workers.assert_wallet(available=17_000, pending=0)
    assert sweep(now + timedelta(days=8)) == 0


def test_the_largest_held_amounts_sum_past_one_orders_maximum(workers: Workers) -> None:
    # Two held orders of the largest amount (a twelve-digit currency), no commission: their sum is past one
    # order's maximum, in the balance's pending and in the books
    for order in ("po_max_1", "po_max_2"):
        workers.deliver(workers.credit.handler, charge(order, amount=TWELVE_DIGIT_AMOUNT_MINOR, fee=0, currency="IDR"))
    largest = 2 * TWELVE_DIGIT_AMOUNT_MINOR
    workers.assert_wallet(available=0, pending=largest, currency="IDR")
    for order in ("po_max_1", "po_max_2"):
        workers.deliver(workers.holds.handler, release(order=order))
    workers.assert_wallet(available=largest, pending=0, currency="IDR")


def test_the_hold_is_kept_on_the_charge_marker_in_the_documented_layout(workers: Workers) -> None:
    workers.deliver(workers.credit.handler, charge())
    item = (
        boto3.resource("dynamodb")
        .Table(workers.store.table_name)
        .get_item(Key={keys.PARTITION_KEY: SELLER, keys.SORT_KEY: keys.applied_key(keys.charge_marker(ORDER))})["Item"]
    )
    assert {k: item[k] for k in ("hold_status", "pending", "currency")} == {
        "hold_status": "HELD",
        "pending": 8_500,
        "currency": "EUR",
    }
    assert item[keys.HOLD_DUE_ATTRIBUTE] == item[keys.RELEASE_AFTER_ATTRIBUTE][:10]
