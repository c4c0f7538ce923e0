"""`payments soak` end to end: 100 seeded checkouts under every kind of fault, through the public API of
a local stack of its own (its faults never leak into the shared one), and not a cent out of place. The
soak runs once for the module; each test asserts one thing about that run."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from typing import Any

import pytest

from local_stack.cli import main
from local_stack.faults import KINDS
from tests.conftest import Synthesized

CHECKOUTS = 100
SEED = 1
ORDERS = 241  # what seed 1 draws for 100 checkouts (local_stack/soak/workload.py)
# Driving, waiting for quiet and checking take minutes on a shared two-core machine.
pytestmark = pytest.mark.timeout(1800)


@dataclass(frozen=True)
class SoakRun:
    status: int
    printed: list[str]
    report: dict[str, Any]
    environment_before: dict[str, str]
    environment_after: dict[str, str]


@pytest.fixture(scope="module")
def soaked(synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoakRun]:
    directory = tmp_path_factory.mktemp("soak")
    report = directory / "soak.json"
    environment_before = dict(os.environ)
    printed = io.StringIO()
    # When 100 checkouts are soaked under every kind of fault
    with redirect_stdout(printed):
        status = main(
            [
                "soak",
                *("--checkouts", str(CHECKOUTS), "--seed", str(SEED), "--faults", "all"),
                *("--template", str(synthesized.template_path), "--log", str(directory / "soak.log")),
                *("--report", str(report)),
            ]
        )
    yield SoakRun(
        status=status,
        printed=printed.getvalue().splitlines(),
        report=json.loads(report.read_text()),
        environment_before=environment_before,
        environment_after=dict(os.environ),
    )


def test_a_seeded_soak_under_every_fault_conserves_money(soaked: SoakRun) -> None:
    # Then it prints its one line: every checkout and order driven, faults injected, no violation
    assert len(soaked.printed) == 1, soaked.printed
    line = re.fullmatch(
        rf"soak: {CHECKOUTS} checkouts, {ORDERS} orders, (\d+) faults injected, 0 violations, \d+ s", soaked.printed[0]
    )
    assert line is not None, soaked.printed[0]
    found = soaked.report
    assert (soaked.status, found["violations"]) == (0, [])
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


def test_a_soak_leaves_the_process_environment_as_it_found_it(soaked: SoakRun) -> None:
    # The auditor ran against the soak's stack (its endpoint and tables) in a process of its own: nothing of
    # that stack is left for whatever runs next in this process (later tests' fixtures, for one)
    assert soaked.environment_after == soaked.environment_before
