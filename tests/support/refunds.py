"""Refunds in end-to-end tests: waiting for a refund, the books of a seller, and the money auditor's verdict
on a scenario's own ids."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from local_stack.stack import LocalStack
from tests.support.api import ApiClient, checkout

REFUND_TERMINAL = ("SUCCEEDED", "FAILED")


def paid_orders(api: ApiClient, *orders: tuple[str, int] | tuple[str, int, str]) -> dict[str, Any]:
    """A checkout paid through the whole path (charged, credited, booked); returns the payment."""
    accepted = api.post("/v1/payments", checkout(*orders))
    assert accepted.status == 202, accepted.body
    payment = api.wait_for_payment(accepted.body["payment_id"])
    assert payment["status"] != "PROCESSING", payment
    return payment


def wait_for_refund(api: ApiClient, refund_id: str, *, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        result = api.get(f"/v1/refunds/{refund_id}")
        assert result.status == 200, result.body
        if result.body["status"] in REFUND_TERMINAL or time.monotonic() > deadline:
            return dict(result.body)
        time.sleep(0.2)


def fail_at_psp(api: ApiClient, psp: ApiClient, refund_id: str, *, timeout: float = 30) -> None:
    """The PSP fails a refund it had reported succeeded (the simulator sends refund.failed by webhook); wait
    until the refund is FAILED."""
    (psp_refund,) = psp.get(f"/v1/refunds?merchant_reference={refund_id}").body["data"]
    assert psp.request("POST", f"/_sim/refunds/{psp_refund['id']}/fail", body={}).status == 200
    deadline = time.monotonic() + timeout
    while api.get(f"/v1/refunds/{refund_id}").body["status"] != "FAILED":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def payable(api: ApiClient, seller_id: str, currency: str = "USD") -> int:
    entries = api.get(f"/v1/ledger/entries?account=seller_payable:{seller_id}").body["entries"]
    return sum(
        e["amount"] if e["direction"] == "credit" else -e["amount"] for e in entries if e["currency"] == currency
    )


def available(api: ApiClient, seller_id: str, currency: str = "USD") -> int:
    balances = api.get(f"/v1/wallets/{seller_id}").body["balances"]
    return int(balances.get(currency, {}).get("available", 0))


def assert_books(api: ApiClient, seller_id: str, expected: int, currency: str = "USD") -> None:
    """The seller's wallet available and ledger payable both reach `expected` (the journal lands after the
    wallet moved: wait for it), and the trial balance is zero."""
    deadline = time.monotonic() + 30
    while (books := (available(api, seller_id, currency), payable(api, seller_id, currency))) != (expected, expected):
        assert time.monotonic() < deadline, books
        time.sleep(0.2)
    trial = api.get("/v1/ledger/trial-balance").body
    assert trial["balanced"] is True, trial


def audit_findings(stack: LocalStack, state_dir: Path, *ids: str) -> list[dict[str, Any]]:
    """`payments audit` on the running stack: the findings that name any of `ids`, every trial-balance
    finding, and every dead-letter queue finding of the refund service (other test files plant failures of
    their own on purpose, so findings about their ids are not this scenario's)."""
    state_file = state_dir / "stack.json"
    state_file.write_text(json.dumps({"aws_endpoint": stack.aws_endpoint, "environments": stack.environments}))
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
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    report = json.loads(done.stdout)
    wanted = set(ids)
    return [
        f
        for f in report["findings"]
        if f["check"] == "trial_balance_zero"
        or wanted & set(f["ids"].values())
        or (f["check"] == "dead_letter_queues_empty" and "Refunds" in json.dumps(f["ids"]))
    ]
