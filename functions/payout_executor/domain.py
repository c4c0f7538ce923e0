"""Pay-outs at the payout provider, driven by the pay-out saga through SQS task tokens.

The saga sends two kinds of message on the payout queue, each carrying a Step Functions task token:
  execute             - submit the payout to the provider (idempotency key = payout_id); answer at once
                        with {"outcome": "accepted" | "failed", ...};
  await_confirmation  - park the token until the provider's webhook says paid or failed; answer then.
The provider's verdict and the parked token meet on one item (pk payout_id) of the payout executions table:
each side writes its half with an atomic update and answers the saga once both halves are there, so a
webhook that arrives before the token (or after) is never lost. Business failures are answered as
task *success* with outcome "failed" (the saga branches on it), never as task failure."""

from __future__ import annotations

from typing import Any, Protocol

from functions.payout_executor.models import PayoutOutcome, PayoutRecord, PayoutTask
from functions.payout_provider.client import payee_id
from functions.payout_provider.models import PayoutResult
from functions.sellers.models import BankAccount

NO_PAYOUT_ACCOUNT = "payout_account_missing"


class PayoutProvider(Protocol):
    def create_payout(
        self, *, idempotency_key: str, amount: int, currency: str, destination: BankAccount, payee: str
    ) -> PayoutResult: ...


class PayoutDestinations(Protocol):
    def open(self, seller_id: str, version: int) -> BankAccount:
        """The bank account of that version of the seller's payout account (its numbers opened)."""


class PayoutExecutionStore(Protocol):
    def submitted(self, payout_id: str, result: PayoutResult) -> PayoutRecord: ...

    def park_token(self, payout_id: str, task_token: str) -> PayoutRecord: ...

    def record_outcome(
        self, payout_id: str, outcome: PayoutOutcome, *, psp_reference: str | None, failure_code: str | None
    ) -> PayoutRecord:
        """Set the provider's verdict if none is recorded yet (the first terminal verdict wins)."""

    def mark_answered(self, payout_id: str, task_token: str) -> None: ...


class TaskAnswers(Protocol):
    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        """Answer a waiting task; False if the token is no longer waiting (answered or timed out)."""


def execute_payout(
    task: PayoutTask,
    *,
    provider: PayoutProvider,
    destinations: PayoutDestinations,
    store: PayoutExecutionStore,
    answers: TaskAnswers,
) -> str:
    if task.amount is None or task.currency is None or task.seller_id is None:
        raise ValueError("an execute task needs seller_id, amount and currency")
    # The version the payout was requested against: the same bank account on every retry. A payout without
    # one (stored before payout accounts existed) or whose version is gone has nowhere to go: it fails at
    # once, and the saga gives the money back, rather than waiting for its timeout with the funds held.
    try:
        if task.payout_account_version is None:
            raise LookupError(f"payout {task.payout_id} names no payout account version")
        destination = destinations.open(task.seller_id, task.payout_account_version)
    except LookupError:
        output = {"outcome": "failed", "psp_reference": None, "failure_code": NO_PAYOUT_ACCOUNT}
        return str(output["outcome"]) if answers.succeed(task.task_token, output) else "token_gone"
    result = provider.create_payout(
        idempotency_key=task.payout_id,
        amount=task.amount,
        currency=task.currency,
        destination=destination,
        payee=payee_id(task.seller_id, task.payout_account_version),
    )
    store.submitted(task.payout_id, result)
    if result.status == "failed":
        output = {"outcome": "failed", "psp_reference": result.psp_reference, "failure_code": result.failure_code}
    else:
        output = {"outcome": "accepted", "psp_reference": result.psp_reference, "failure_code": None}
        if result.status == "paid":  # a provider that pays instantly: the confirmation is already here
            store.record_outcome(task.payout_id, "paid", psp_reference=result.psp_reference, failure_code=None)
    if not answers.succeed(task.task_token, output):
        # Answered already (a duplicate delivery), or the task timed out and the saga moved on: the provider call
        # was idempotent either way, and the saga's retry carries a new token. Kept visible, not failed.
        return "token_gone"
    return str(output["outcome"])


def answer_if_ready(record: PayoutRecord, *, store: PayoutExecutionStore, answers: TaskAnswers) -> bool:
    """Resume the waiting saga once both the token and the verdict are recorded."""
    if record.confirm_token is None or record.outcome is None or record.answered_token == record.confirm_token:
        return False
    answers.succeed(
        record.confirm_token,
        {"outcome": record.outcome, "psp_reference": record.psp_reference, "failure_code": record.failure_code or ""},
    )
    store.mark_answered(record.payout_id, record.confirm_token)
    return True


def await_confirmation(task: PayoutTask, *, store: PayoutExecutionStore, answers: TaskAnswers) -> bool:
    record = store.park_token(task.payout_id, task.task_token)
    return answer_if_ready(record, store=store, answers=answers)


def confirm_payout(
    payout_id: str,
    outcome: PayoutOutcome,
    *,
    psp_reference: str | None,
    failure_code: str | None,
    store: PayoutExecutionStore,
    answers: TaskAnswers,
) -> PayoutRecord:
    """Record the provider's verdict (if none is yet) and resume the waiting saga; the record as it stands,
    whose outcome is the first verdict, this one or an earlier."""
    record = store.record_outcome(payout_id, outcome, psp_reference=psp_reference, failure_code=failure_code)
    answer_if_ready(record, store=store, answers=answers)
    return record
