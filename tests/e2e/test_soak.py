"""`payments soak` end to end: 100 seeded checkouts under every kind of fault, through the public API of
a local stack of its own (its faults never leak into the shared one), and not a cent out of place."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from local_stack.cli import main
from local_stack.faults import KINDS
from tests.conftest import Synthesized

CHECKOUTS = 100
SEED = 1
ORDERS = 241  # what seed 1 draws for 100 checkouts (local_stack/soak/workload.py)
# Driving, waiting for quiet and checking take minutes on a shared two-core machine.
pytestmark = pytest.mark.timeout(1800)


def test_a_seeded_soak_under_every_fault_conserves_money(
    synthesized: Synthesized, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "soak.json"
    # When 100 checkouts are soaked under every kind of fault
    status = main(
        [
            "soak",
            *("--checkouts", str(CHECKOUTS), "--seed", str(SEED), "--faults", "all"),
            *("--template", str(synthesized.template_path), "--log", str(tmp_path / "soak.log")),
            *("--report", str(report)),
        ]
    )

    # Then it prints its one line: every checkout and order driven, faults injected, no violation
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1, printed
    line = re.fullmatch(
        rf"soak: {CHECKOUTS} checkouts, {ORDERS} orders, (\d+) faults injected, 0 violations, \d+ s", printed[0]
    )
    assert line is not None, printed[0]
    found = json.loads(report.read_text())
    assert (status, found["violations"]) == (0, [])
    assert int(line.group(1)) == sum(found["faults"].values()) > 0
    # And every kind of fault struck at least once
    struck = {
        "duplicates": "duplicate_delivery",
        "crashes": "crash_before",
        "psp": "psp_5xx",
        "throttling": "dynamodb_throttle",
        "webhooks": "webhook_dropped",
        "interleave": "settlement_interleaved",
    }
    assert set(struck) == set(KINDS)
    assert all(found["faults"].get(fault, 0) > 0 for fault in struck.values()), found["faults"]
    assert found["payouts"] > 0
