"""Pay-outs at the PSP, driven by the pay-out saga through SQS task tokens.

The saga sends two kinds of message on the payout queue, each carrying a Step Functions task token:
  execute             - submit the payout to the PSP (idempotency key = payout_id); answer at once
                        with {"outcome": "accepted" | "failed", ...};
  await_confirmation  - park the token until the PSP's webhook says paid or failed; answer then.
The PSP's verdict and the parked token meet on one item (pk payout_id) of the executor's payout table:
each side writes its half with an atomic update and answers the saga once both halves are there, so a
webhook that arrives before the token (or after) is never lost. Business failures are answered as
task *success* with outcome "failed" (the saga branches on it), never as task failure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import urllib3
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from functions.common.aws import client
from functions.common.dynamo import plain, table
from functions.common.settings import FunctionSettings
from functions.executor.psp import ChargeResult, PspUnavailable, json_object, retrying_pool

PayoutOutcome = Literal["paid", "failed"]


class PayoutExecutorSettings(FunctionSettings):
    payouts_table: str = Field(alias="PAYOUT_EXECUTIONS_TABLE_NAME")
    psp_base_url: str = Field(alias="PSP_BASE_URL")
    psp_timeout_seconds: float = Field(default=2.0, alias="PSP_TIMEOUT_SECONDS", gt=0)
    psp_max_retries: int = Field(default=4, alias="PSP_MAX_RETRIES", ge=0)


class PayoutTask(BaseModel):
    """saga -> executor (payout queue)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["execute", "await_confirmation"]
    payout_id: str
    task_token: str
    seller_id: str | None = None
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class PayoutResult:
    status: Literal["in_transit", "paid", "failed"]
    psp_reference: str | None
    failure_code: str | None = None


class PspOperations:
    """The PSP calls besides charging: payouts, and looking up what a key did (never a new charge)."""

    def __init__(self, base_url: str, *, timeout_seconds: float, max_retries: int) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = retrying_pool(timeout_seconds, max_retries)

    def _request(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        try:
            response = self._http.request(method, f"{self.base_url}{path}", **kwargs)
        except urllib3.exceptions.HTTPError as error:
            raise PspUnavailable(f"PSP unreachable: {type(error).__name__}") from error
        if response.status >= 500 or response.status in (409, 429):
            raise PspUnavailable(f"PSP answered {response.status}")
        return response.status, json_object(response.data)

    def create_payout(self, *, idempotency_key: str, amount: int, currency: str, destination: str) -> PayoutResult:
        body = {
            "amount": amount,
            "currency": currency,
            "destination": destination,
            "merchant_reference": idempotency_key,
        }
        status, payload = self._request(
            "POST",
            "/v1/payouts",
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
        )
        if status == 200:
            return PayoutResult(payload["status"], payload.get("id"), payload.get("failure_code"))
        refusal = payload.get("error", {})
        return PayoutResult("failed", refusal.get("payout"), str(refusal.get("code", "psp_payout_refused")))

    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None:
        """What the PSP did with this key: None if it never created a charge for it."""
        status, payload = self._request("GET", f"/v1/charges/by_idempotency_key/{idempotency_key}")
        if status == 404:
            return None
        if status != 200:
            raise PspUnavailable(f"PSP answered {status} to a charge lookup")
        return ChargeResult(
            status=payload["status"], psp_reference=payload["id"], failure_code=payload.get("failure_code")
        )


class PayoutPsp(Protocol):
    def create_payout(self, *, idempotency_key: str, amount: int, currency: str, destination: str) -> PayoutResult: ...


class PayoutRecord(BaseModel):
    payout_id: str
    psp_reference: str | None = None
    outcome: PayoutOutcome | None = None
    failure_code: str | None = None
    confirm_token: str | None = None
    answered_token: str | None = None


class PayoutExecutionStore(Protocol):
    def submitted(self, payout_id: str, result: PayoutResult) -> PayoutRecord: ...

    def park_token(self, payout_id: str, task_token: str) -> PayoutRecord: ...

    def record_outcome(
        self, payout_id: str, outcome: PayoutOutcome, *, psp_reference: str | None, failure_code: str | None
    ) -> PayoutRecord:
        """Set the PSP's verdict if none is recorded yet (the first terminal verdict wins)."""

    def mark_answered(self, payout_id: str, task_token: str) -> None: ...


class TaskAnswers(Protocol):
    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        """Answer a waiting task; False if the token is no longer waiting (answered or timed out)."""


def execute_payout(task: PayoutTask, *, psp: PayoutPsp, store: PayoutExecutionStore, answers: TaskAnswers) -> str:
    if task.amount is None or task.currency is None or task.seller_id is None:
        raise ValueError("an execute task needs seller_id, amount and currency")
    result = psp.create_payout(
        idempotency_key=task.payout_id, amount=task.amount, currency=task.currency, destination=task.seller_id
    )
    store.submitted(task.payout_id, result)
    if result.status == "failed":
        output = {"outcome": "failed", "psp_reference": result.psp_reference, "failure_code": result.failure_code}
    else:
        output = {"outcome": "accepted", "psp_reference": result.psp_reference, "failure_code": None}
        if result.status == "paid":  # a PSP that pays instantly: the confirmation is already here
            store.record_outcome(task.payout_id, "paid", psp_reference=result.psp_reference, failure_code=None)
    answers.succeed(task.task_token, output)
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
) -> bool:
    record = store.record_outcome(payout_id, outcome, psp_reference=psp_reference, failure_code=failure_code)
    return answer_if_ready(record, store=store, answers=answers)


class DynamoPayoutExecutionStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def _update(
        self, payout_id: str, expression: str, values: dict[str, Any], condition: str | None = None
    ) -> PayoutRecord:
        kwargs: dict[str, Any] = {
            "Key": {"payout_id": payout_id},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if condition:
            kwargs["ConditionExpression"] = condition
        try:
            item = table(self.table_name).update_item(**kwargs)["Attributes"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            item = table(self.table_name).get_item(Key={"payout_id": payout_id}, ConsistentRead=True)["Item"]
        return PayoutRecord.model_validate(plain(item))

    def submitted(self, payout_id: str, result: PayoutResult) -> PayoutRecord:
        values: dict[str, Any] = {":ref": result.psp_reference or ""}
        return self._update(payout_id, "SET psp_reference = :ref", values)

    def park_token(self, payout_id: str, task_token: str) -> PayoutRecord:
        return self._update(payout_id, "SET confirm_token = :token", {":token": task_token})

    def record_outcome(
        self, payout_id: str, outcome: PayoutOutcome, *, psp_reference: str | None, failure_code: str | None
    ) -> PayoutRecord:
        values: dict[str, Any] = {":outcome": outcome, ":code": failure_code or ""}
        sets = "SET outcome = :outcome, failure_code = :code"
        if psp_reference:
            sets += ", psp_reference = if_not_exists(psp_reference, :ref)"
            values[":ref"] = psp_reference
        return self._update(payout_id, sets, values, condition="attribute_not_exists(outcome)")

    def mark_answered(self, payout_id: str, task_token: str) -> None:
        table(self.table_name).update_item(
            Key={"payout_id": payout_id},
            UpdateExpression="SET answered_token = :token",
            ExpressionAttributeValues={":token": task_token},
        )


class StepFunctionsAnswers:
    # A token that is no longer waiting: answered already, or its task timed out / execution ended.
    _GONE = frozenset({"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"})

    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        try:
            client("stepfunctions").send_task_success(taskToken=task_token, output=json.dumps(output))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in self._GONE:
                return False
            raise
        return True
