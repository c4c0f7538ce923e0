"""The payout executor with in-memory ports: the pairing of a PSP verdict with the saga's parked task
token, whichever comes first."""

from __future__ import annotations

from typing import Any

import pytest

from functions.payout_executor import domain as payouts
from functions.payout_executor.models import PayoutRecord, PayoutTask
from functions.payout_provider.client import payee_id
from functions.payout_provider.models import PayoutResult
from functions.sellers.models import BankAccount
from tests.support.bank_accounts import CLOSED_US_ACCOUNT, us_bank_account


class Records:
    def __init__(self) -> None:
        self.items: dict[str, PayoutRecord] = {}

    def _get(self, payout_id: str) -> PayoutRecord:
        return self.items.setdefault(payout_id, PayoutRecord(payout_id=payout_id))

    def submitted(self, payout_id: str, result: PayoutResult) -> PayoutRecord:
        record = self._get(payout_id)
        record.psp_reference = result.psp_reference
        return record.model_copy()

    def park_token(self, payout_id: str, task_token: str) -> PayoutRecord:
        record = self._get(payout_id)
        record.confirm_token = task_token
        return record.model_copy()

    def record_outcome(
        self, payout_id: str, outcome: Any, *, psp_reference: str | None, failure_code: str | None
    ) -> PayoutRecord:
        record = self._get(payout_id)
        if record.outcome is None:
            record.outcome, record.failure_code = outcome, failure_code
            record.psp_reference = record.psp_reference or psp_reference
        return record.model_copy()

    def mark_answered(self, payout_id: str, task_token: str) -> None:
        self._get(payout_id).answered_token = task_token


class Answers:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        self.sent.append((task_token, output))
        return True


@pytest.mark.parametrize("webhook_first", [True, False])
def test_the_verdict_and_the_parked_token_meet_once_whichever_comes_first(webhook_first: bool) -> None:
    records, answers = Records(), Answers()
    task = PayoutTask(action="await_confirmation", payout_id="payout_1", task_token="tok-2")

    def webhook(outcome: Any, code: str | None = None) -> None:
        payouts.confirm_payout(
            "payout_1", outcome, psp_reference="pout_1", failure_code=code, store=records, answers=answers
        )

    if webhook_first:
        webhook("paid")
        payouts.await_confirmation(task, store=records, answers=answers)
    else:
        payouts.await_confirmation(task, store=records, answers=answers)
        webhook("paid")
    webhook("paid")  # a duplicate
    webhook("failed", "account_closed")  # a late, contradicting event: the first verdict stands
    payouts.await_confirmation(task, store=records, answers=answers)  # a redelivered task message

    assert answers.sent == [("tok-2", {"outcome": "paid", "psp_reference": "pout_1", "failure_code": ""})]


class Provider:
    def __init__(self) -> None:
        self.payouts: list[tuple[str, int, BankAccount, str]] = []

    def create_payout(
        self, *, idempotency_key: str, amount: int, currency: str, destination: BankAccount, payee: str
    ) -> PayoutResult:
        self.payouts.append((idempotency_key, amount, destination, payee))
        return PayoutResult("in_transit", "pmt_1", None)


class Destinations:
    def __init__(self, accounts: dict[tuple[str, int], BankAccount]) -> None:
        self.accounts = accounts

    def open(self, seller_id: str, version: int) -> BankAccount:
        return self.accounts[(seller_id, version)]


def execute_task(version: int | None) -> PayoutTask:
    return PayoutTask(
        action="execute",
        payout_id="payout_1",
        task_token="tok-1",
        seller_id="s1",
        amount=500,
        currency="USD",
        payout_account_version=version,
    )


def test_a_payout_is_sent_to_the_account_version_it_names_on_every_delivery() -> None:
    provider, answers = Provider(), Answers()
    destinations = Destinations({("s1", 1): us_bank_account(), ("s1", 2): us_bank_account(CLOSED_US_ACCOUNT)})
    for _ in range(2):  # the task delivered twice, after the seller changed account to version 2
        outcome = payouts.execute_payout(
            execute_task(1), provider=provider, destinations=destinations, store=Records(), answers=answers
        )
        assert outcome == "accepted"
    # the payee of version 1: a new account is a new payee, never this payout's
    assert provider.payouts == [("payout_1", 500, us_bank_account(), payee_id("s1", 1))] * 2
    assert payee_id("s1", 1) != payee_id("s1", 2)


@pytest.mark.parametrize(
    ("version", "accounts"),
    [(None, {}), (2, {("s1", 1): us_bank_account()})],
    ids=["a payout from before payout accounts", "an account version that is gone"],
)
def test_a_payout_with_nowhere_to_go_fails_at_once_and_pays_nobody(
    version: int | None, accounts: dict[tuple[str, int], BankAccount]
) -> None:
    provider, answers = Provider(), Answers()
    outcome = payouts.execute_payout(
        execute_task(version), provider=provider, destinations=Destinations(accounts), store=Records(), answers=answers
    )
    # answered as a business failure, so the saga releases the hold now instead of after its timeout
    assert outcome == "failed"
    assert answers.sent == [
        ("tok-1", {"outcome": "failed", "psp_reference": None, "failure_code": "payout_account_missing"})
    ]
    assert provider.payouts == []
