"""Adapters of the payout executor: its DynamoDB table (key: payout_id) and the saga's task tokens."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from functions.common.aws import client
from functions.common.dynamo import plain, table
from functions.payout_executor.models import PayoutOutcome, PayoutRecord
from functions.payout_provider.models import PayoutResult


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
