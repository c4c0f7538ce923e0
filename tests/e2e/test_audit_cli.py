"""`payments audit` through the local stack, as a process: exit 0 on a consistent stack, 1 with the
finding's ids once a violation is planted in the ledger's balance records.

Named to run early in the session: later e2e files plant failures on purpose (DLQ messages, stuck orders)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from local_stack.stack import LocalStack
from tests.support.api import ApiClient, checkout, unique


def _audit(state_file: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "local_stack.cli",
            "audit",
            "--state-file",
            str(state_file),
            "--settle-seconds",
            "0",
            "--recheck-pause-seconds",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)


def test_payments_audit_exits_0_on_a_consistent_stack_and_1_naming_a_planted_violation(
    stack: LocalStack, api: ApiClient, aws: Any, tmp_path: Path
) -> None:
    assert stack.cloud is not None
    state_file = tmp_path / "stack.json"
    state_file.write_text(json.dumps({"aws_endpoint": stack.aws_endpoint, "environments": stack.environments}))
    # Given a checkout paid through the whole path
    accepted = api.post("/v1/payments", checkout((unique("seller"), 1099), (unique("seller"), 2500)))
    assert accepted.status == 202, accepted.body
    payment = api.wait_for_payment(accepted.body["payment_id"])
    assert payment["status"] == "SUCCEEDED"
    assert all(o["wallet_updated"] and o["ledger_updated"] for o in payment["orders"])

    # When the auditor runs, then it finds nothing and exits 0, having checked the checkout's orders
    status, report = _audit(state_file)
    assert (status, report["findings"]) == (0, [])
    assert report["orders_checked"] >= 2

    # Given a balance record no entry explains
    balances = next(
        n for logical_id, n in stack.cloud.names_of("AWS::DynamoDB::Table").items() if "LedgerBalances" in logical_id
    )
    key = {"currency": {"S": "EUR"}, "account": {"S": "audit_probe"}}
    aws("dynamodb").put_item(TableName=balances, Item={**key, "debits": {"N": "3"}})
    try:
        # When the auditor runs, then it exits 1 and names the currency
        status, report = _audit(state_file)
        assert status == 1
        assert report["findings"] == [
            {"check": "trial_balance_zero", "message": "debits 3 != credits 0", "ids": {"currency": "EUR"}}
        ]
        assert report["violations"]["trial_balance_zero"] == 1
    finally:
        aws("dynamodb").delete_item(TableName=balances, Key=key)
