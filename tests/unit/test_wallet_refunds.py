"""The wallet's refund movements: each applied once by its own marker, its journal handed to the ledger every
time (the ledger books a journal id once), and both journals within the ledger's postings policy."""

from __future__ import annotations

import pytest

from functions.common.events import JournalPosting, PostingLine
from functions.common.refund_events import RefundMoney
from functions.ledger.policy import PostingRefused, check_posting
from functions.wallet.refunds import apply_refund_money, refund_posting
from functions.wallet.store import Movement
from tests.support.fakes import Recorder

REFUND_ID = "rf_" + "0" * 32


class MemoryWallet:
    def __init__(self, available: int) -> None:
        self.available = available
        self.markers: set[str] = set()

    def _apply(self, amount: int, marker: str) -> bool:
        if marker in self.markers:
            return False
        self.markers.add(marker)
        self.available += amount
        return True

    # Orders without a hold: every movement is in `available` (the held split is tested against moto in
    # tests/integration/test_fulfilment_holds.py).
    def refund_debit_once(
        self, *, seller_id: str, currency: str, payment_order_id: str, amount: int, applied_marker: str
    ) -> Movement:
        return Movement(applied_now=self._apply(-amount, applied_marker))

    def refund_restore_once(
        self,
        *,
        seller_id: str,
        currency: str,
        payment_order_id: str,
        amount: int,
        applied_marker: str,
        debit_marker: str,
    ) -> Movement:
        return Movement(applied_now=self._apply(amount, applied_marker))


def money(movement: str, amount: int = 400) -> RefundMoney:
    return RefundMoney(
        refund_id=REFUND_ID,
        payment_order_id="po_1",
        payment_id="pay_1",
        seller_id="seller_a",
        amount=amount,
        currency="USD",
        movement=movement,  # type: ignore[arg-type]
    )


def test_a_debit_and_its_restore_each_apply_once_in_either_order() -> None:
    for order in (("debit", "restore"), ("restore", "debit")):
        wallet, ledger = MemoryWallet(100), Recorder()
        for movement in (*order, *order):
            apply_refund_money(money(movement), store=wallet, ledger=ledger)
        assert wallet.available == 100
        assert [m.kind for m in ledger.messages if isinstance(m, JournalPosting)] == [
            "refund" if m == "debit" else "refund_reversal" for m in (*order, *order)
        ]


def test_a_debit_may_take_the_balance_below_zero() -> None:
    wallet = MemoryWallet(100)
    assert apply_refund_money(money("debit"), store=wallet, ledger=Recorder()) is True
    assert wallet.available == -300


def test_the_refund_journals_are_allowed_postings_of_the_wallet() -> None:
    debit, restore = refund_posting(money("debit")), refund_posting(money("restore"))
    assert [(line.account, line.direction, line.amount) for line in debit.lines] == [
        ("seller_payable:seller_a", "debit", 400),
        ("psp_receivable", "credit", 400),
    ]
    assert [(line.account, line.direction) for line in restore.lines] == [
        ("psp_receivable", "debit"),
        ("seller_payable:seller_a", "credit"),
    ]
    check_posting(debit)
    check_posting(restore)


@pytest.mark.parametrize(
    "change",
    [
        {"producer": "payouts"},  # another producer's
        {"payment_order_id": None},  # a refund books against its order
        {"business_id": "payout_1", "reference": "payout_1"},  # not a refund id
        {"reference": "rf_" + "1" * 32},  # the reference is the refund
        {
            "lines": [
                PostingLine(account="bank_cash", direction="debit", amount=400),
                PostingLine(account="psp_receivable", direction="credit", amount=400),
            ]
        },
    ],
)
def test_refund_journals_outside_the_wallets_authority_are_refused(change: dict[str, object]) -> None:
    posting = refund_posting(money("debit")).model_copy(update=change)
    with pytest.raises(PostingRefused):
        check_posting(posting)


def test_other_kinds_still_may_not_name_a_payment_order() -> None:
    posting = JournalPosting(
        producer="payouts",
        kind="payout_in_transit",
        business_id="payout_1",
        reference="payout_1",
        currency="USD",
        payment_order_id="po_1",
        lines=[
            PostingLine(account="seller_payable:s", direction="debit", amount=1),
            PostingLine(account="payout_in_transit:s", direction="credit", amount=1),
        ],
    )
    with pytest.raises(PostingRefused):
        check_posting(posting)
