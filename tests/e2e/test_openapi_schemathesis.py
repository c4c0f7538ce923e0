"""Schemathesis against the local stack's /openapi.json: every check, every phase (stateful included), the
seed and hooks of schemathesis.toml, and not one failure. A small run; the README has the bigger one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local_stack.stack import LocalStack
from tests.e2e.conftest import API_KEY
from tests.support.api import ApiClient
from tests.support.schemathesis_hooks import PAYOUT_SECRET_ENV, SECRET_ENV

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES = 10
SEED = 17  # schemathesis.toml's
PHASES = ("examples", "coverage", "fuzzing", "stateful")
# Each operation gets at least its coverage cases and MAX_EXAMPLES fuzzed ones; the run makes far more.
MIN_TEST_CASES = 300
pytestmark = pytest.mark.timeout(960)  # the module's first test starts the run


def _operations(document: dict[str, Any]) -> list[str]:
    return [f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item]


@pytest.fixture(scope="module")
def run(stack: LocalStack, api: ApiClient, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    assert stack.psp_simulator is not None and stack.psp_simulator.webhooks.secret is not None
    report = tmp_path_factory.mktemp("schemathesis") / "report.json"
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(ROOT / "schemathesis.toml"),
        "run",
        f"{stack.api_url}/openapi.json",
        "--header",
        f"x-api-key: {API_KEY}",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--request-timeout",
        "60",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]
    provider_secret = stack.psp_simulator.payout_provider.webhooks.secret
    assert provider_secret is not None
    env = {**os.environ, SECRET_ENV: stack.psp_simulator.webhooks.secret, PAYOUT_SECRET_ENV: provider_secret}
    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    summary: dict[str, Any] = json.loads(report.read_text())
    summary["output"] = finished.stdout + finished.stderr
    summary["returncode"] = finished.returncode
    return summary


def test_schemathesis_reports_no_failure(run: dict[str, Any]) -> None:
    output = run["output"][-20000:]
    assert run["returncode"] == 0, output
    assert run["exit_code"] == 0 and run["complete"] is True, output
    assert run["failures"] == [] and run["errors"] == [], output
    cases = run["test_cases"]
    assert cases["with_failures"] == 0 and cases["unique_failures"] == 0 and cases["errored"] == 0, output


def test_schemathesis_ran_every_operation_and_phase(run: dict[str, Any], api: ApiClient) -> None:
    operations = _operations(api.get("/openapi.json").body)
    # 11 before, + 4 for marketplace events, + 2 for refunds, + 2 for disputes, + 2 for sellers, + 1 fulfilment,
    # + 1 for the payout provider's webhooks
    assert len(operations) == 23
    assert run["operations"] == {
        "total": len(operations),
        "selected": len(operations),
        "tested": len(operations),
        "errored": 0,
        "skipped": 0,
        "skip_reasons": [],
    }
    assert {phase: run["phases"][phase]["status"] for phase in PHASES} == dict.fromkeys(PHASES, "success")
    assert run["seed"] == SEED
    assert "--checks all" in run["command"]
    assert run["test_cases"]["generated"] >= MIN_TEST_CASES, run["test_cases"]
    # Every operation had requests the API accepted, except those that need data no generator can make:
    # a payout needs a funded seller with a payout account, a reconciliation run a settlement file, a dispute the
    # buyer's bank, a seller read one that has an account (the stateful phase reads those it created), a
    # fulfilment a held order already charged (a generated order id is unknown: 404, or not charged: 409). The
    # endpoints Schemathesis registers are removed by the after_call hook at once (so that none lingers to
    # dead-letter later tests' events): its own DELETEs only ever find unknown ids.
    accepted = {
        operation: sum(phase["accepted"] for phase in rates.values()) for operation, rates in run["valid_rates"].items()
    }
    assert {op for op, count in accepted.items() if count == 0} <= {
        "POST /v1/payouts",
        "GET /v1/payouts/{payout_id}",
        "GET /v1/reconciliations/{run_id}",
        "GET /v1/disputes/{dispute_id}",
        "DELETE /v1/webhook-endpoints/{endpoint_id}",
        "GET /v1/sellers/{seller_id}",
        "POST /v1/payment-orders/{payment_order_id}/fulfil",
    }, accepted
    assert accepted["PUT /v1/sellers/{seller_id}/payout-account"] >= 5, accepted
    assert accepted["POST /v1/payments"] >= 20 and accepted["POST /v1/webhooks/psp"] >= 5, accepted
    assert accepted["POST /v1/webhooks/payout-provider"] >= 5, accepted
    # The stateful phase followed the document's links from created payments (its seven links: a payment's to it
    # and its first seller's wallet, a payout's to it and its seller's wallet, a refund's, an endpoint's list,
    # a payout account's to its seller).
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", run["output"])
    assert links is not None and int(links[1]) >= 1 and int(links[2]) == 7, run["output"][-3000:]
