"""`payments local` as a user runs it: a subprocess on free ports, driven over real HTTP and SQS, and
stopped with SIGTERM leaving nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.conftest import Synthesized
from tests.support.api import ApiClient, checkout, unique
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_local_stack_serves_api_queues_and_state_machines_then_stops_cleanly(
    synthesized: Synthesized, tmp_path: Path
) -> None:
    ports = {"PAYMENTS_PORT": free_port(), "PAYMENTS_PSP_PORT": free_port(), "PAYMENTS_AWS_PORT": free_port()}
    state_file = tmp_path / "stack.json"
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "PAYMENTS_API_KEY": "process-test-key"}
    log = (tmp_path / "stack.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local_stack.cli",
            "local",
            "--template",
            str(synthesized.template_path),
            "--state-file",
            str(state_file),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(5)]
        assert banner[0].startswith("payments local stack ready"), banner
        assert f"http://127.0.0.1:{ports['PAYMENTS_PORT']}" in banner[1]
        assert "process-test-key" in banner[2]
        # No bound on the startup time here: on a shared, loaded machine it swings several-fold (the
        # README's figure comes from one quiet run).
        api = ApiClient(f"http://127.0.0.1:{ports['PAYMENTS_PORT']}", "process-test-key")
        state = json.loads(state_file.read_text())

        # /health answers
        health = api.get("/health")
        assert (health.status, health.body) == (200, {"status": "ok", "function_timeouts": {}})

        # A request without the API key is refused before any handler runs
        anonymous = ApiClient(api.base_url, None).get("/v1/wallets/seller_x")
        assert anonymous.status == 403
        assert anonymous.body["error"]["type"] == "authentication_error"

        # One request through the API to the payment handler, all the way through the workers
        seller = unique("seller")
        accepted = api.post("/v1/payments", checkout((seller, 1250)))
        assert accepted.status == 202, accepted.body
        payment = api.wait_for_payment(accepted.body["payment_id"])
        assert payment["status"] == "SUCCEEDED"
        assert api.get(f"/v1/wallets/{seller}").body == {
            "seller_id": seller,
            "balances": {"USD": {"available": 1250, "reserved": 0, "pending": 0}},
        }

        # One message through a queue to a worker: a journal posted straight onto the postings queue
        aws = boto3.session.Session(region_name="us-east-1").client(
            "sqs", endpoint_url=f"http://127.0.0.1:{ports['PAYMENTS_AWS_PORT']}"
        )
        postings_queue = next(
            url for name, url in state["queues"].items() if "LedgerPostingsQueue" in name and "Dlq" not in name
        )
        # (as the payout saga posts one: the ledger books only what a producer's kind allows)
        posting_seller, posting_payout = unique("s"), unique("payout")
        account = f"seller_payable:{posting_seller}"
        aws.send_message(
            QueueUrl=postings_queue,
            MessageBody=json.dumps(
                {
                    "producer": "payouts",
                    "kind": "payout_in_transit",
                    "business_id": posting_payout,
                    "reference": posting_payout,
                    "currency": "EUR",
                    "lines": [
                        {"account": account, "direction": "debit", "amount": 700},
                        {"account": f"payout_in_transit:{posting_seller}", "direction": "credit", "amount": 700},
                    ],
                }
            ),
        )
        deadline = time.monotonic() + 30
        entries: list[dict[str, object]] = []
        while time.monotonic() < deadline and not entries:
            entries = api.get(f"/v1/ledger/entries?account={account}").body["entries"]
            time.sleep(0.2)
        assert [(e["direction"], e["amount"], e["currency"]) for e in entries] == [("debit", 700, "EUR")]

        # A state machine from the template runs to completion in moto
        sfn = boto3.session.Session(region_name="us-east-1").client(
            "stepfunctions", endpoint_url=f"http://127.0.0.1:{ports['PAYMENTS_AWS_PORT']}"
        )
        machine = next(arn for name, arn in state["state_machines"].items() if "PayoutSaga" in name)
        execution = sfn.start_execution(
            stateMachineArn=machine,
            name=unique("exec"),
            input=json.dumps(
                {
                    "payout_id": unique("po"),
                    "seller_id": seller,
                    "currency": "USD",
                    "amount": 999_999,
                    "payout_account_version": 1,
                }
            ),
        )
        deadline = time.monotonic() + 30
        while True:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert described["status"] == "FAILED"
        assert (
            sfn.get_execution_history(executionArn=execution["executionArn"])["events"][-1][
                "executionFailedEventDetails"
            ]["error"]
            == "InsufficientFunds"
        )
        assert api.get(f"/v1/wallets/{seller}").body["balances"]["USD"] == {
            "available": 1250,
            "reserved": 0,
            "pending": 0,
        }

        # `payments demo` tours the running stack: checkout, decline, retries, fulfilment, payout, refund,
        # dispute, settlement
        demo = subprocess.run(
            [sys.executable, "-m", "local_stack.cli", "demo", "--state-file", str(state_file)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        for line in (
            ": SUCCEEDED",
            ": PARTIALLY_FAILED",
            "card_declined",
            "Idempotent-Replayed: true",
            "different body -> 422 idempotency_error",
            "hold until_fulfilled",
            "a payout while it is pending -> 422 insufficient_funds",
            "/fulfil -> 200, release requested",
            "bob's wallet now {'USD': {'available': 2500, 'reserved': 0, 'pending': 0}}",
            "before bob has a payout account -> 422 payout_account_missing",
            "payout-account -> 200 VERIFIED, shown as ...6789",
            ": PAID to ...6789;",
            "above the balance -> 422 insufficient_funds",
            "carol is credited 4200 - 420; platform_revenue is credited [420]",
            "amount=1200, of which the commission gives back 120",
            "PSP refunds: [(1200, 'succeeded')]",
            "above what is left of the charge -> 422 refund_exceeds_charge",
            "charge.dispute.created -> dispute dp_",
            "charge.dispute.closed -> dispute LOST; "
            "grace's wallet {'USD': {'available': -1500, 'reserved': 0, 'pending': 0}}",
            "breaks={'missing_internal': 1, 'amount_mismatch': 1}",
            # the payout provider's file: bob's payout, matched (the PSP's file has no payout rows any more)
            "rows=1 matched=1 breaks={}",
            "balanced=True",
        ):
            assert line in demo.stdout, (line, demo.stdout)

        children = _children(process.pid)
        assert len(children) >= 2  # moto and the Lambda workers
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("the local stack did not stop within 30 s of SIGTERM")
        log.close()

    assert exit_code == 0
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in children if _alive(pid)] == []
    assert [port for port in ports.values() if _port_open(port)] == []
    assert not state_file.exists()
