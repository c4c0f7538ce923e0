"""`payments fuzz` against the shared local stack: a small seeded run with exact outcomes (no 5xx, every
answer the one its request expected, and the requests that must change nothing changed nothing), and the
same seed generating the same requests."""

from __future__ import annotations

import pytest

from local_stack.commands.fuzz import fuzz, target_of_stack
from local_stack.fuzzing.generator import RequestGenerator
from local_stack.fuzzing.runner import FuzzReport
from local_stack.stack import LocalStack

REQUESTS = 300
SEED = 7
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def report(stack: LocalStack) -> FuzzReport:
    return fuzz(target_of_stack(stack), requests=REQUESTS, seed=SEED, chunk=100)


def test_a_seeded_fuzz_run_finds_no_5xx_and_rejected_requests_write_nothing(report: FuzzReport) -> None:
    assert report.problems() == []
    assert report.ok
    assert len(report.outcomes) == REQUESTS
    assert [o.request.index for o in report.outcomes] == list(range(REQUESTS))
    assert report.server_errors == []
    assert report.write_violations == []
    # Every 4xx was answered to a request that must change nothing, and none did.
    assert report.verified_no_write == report.rejected
    assert report.rejected + report.accepted == REQUESTS
    print(report.line())
