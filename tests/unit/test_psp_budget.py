"""The PSP call's time budget: the arithmetic (attempts x timeout + the longest pauses urllib3 can take),
checked against urllib3 itself and against a PSP that never answers, and the rule that a unit of work
(its PSP call, its other calls and a margin) fits in the function's timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from pydantic import ValidationError
from urllib3.util import Retry

from functions.psp.client import PspClient
from functions.psp.http import retrying_pool
from functions.psp.models import PspUnavailable
from functions.psp.settings import PspCallBudget, PspSettings

BASE = {
    "POWERTOOLS_SERVICE_NAME": "executor",
    "PSP_BASE_URL": "http://127.0.0.1:1",
    "PSP_API_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:psp",
}


def test_the_defaults_add_up_to_six_point_six_seconds_a_call() -> None:
    settings = PspSettings.model_validate({**BASE, "FUNCTION_TIMEOUT_SECONDS": "30"})
    budget = settings.psp_call_budget
    # 3 attempts of 2 s, no pause before the first retry, then 0.2 x 2 + 0.2 jitter before the second
    assert (budget.max_retries, budget.timeout_seconds) == (2, 2.0)
    assert [budget.pause_seconds(n) for n in (1, 2)] == [0.0, pytest.approx(0.6)]
    assert budget.seconds == pytest.approx(6.6)
    # And a unit of work (an order, a payout): the call and 3 s of DynamoDB and SQS, with 2 s kept back
    assert settings.record_seconds == pytest.approx(9.6)
    assert settings.record_seconds + settings.deadline_margin_seconds <= settings.function_timeout_seconds


@pytest.mark.parametrize("max_retries", [0, 1, 2, 4, 8])
def test_the_pauses_are_the_longest_urllib3_takes(monkeypatch: pytest.MonkeyPatch, max_retries: int) -> None:
    budget = PspCallBudget(
        timeout_seconds=1, max_retries=max_retries, backoff_factor=0.2, backoff_jitter=0.2, backoff_max=2.0
    )
    retry: Retry = retrying_pool(budget, pool_size=1).connection_pool_kw["retries"]
    monkeypatch.setattr("urllib3.util.retry.random.random", lambda: 1.0)  # the whole jitter, every time
    for failed in range(1, max_retries + 1):
        retry = retry.increment(method="POST", url="/v1/charges", error=ConnectionError("refused"))
        assert retry.get_backoff_time() == pytest.approx(budget.pause_seconds(failed))
    assert retry.respect_retry_after_header is False  # nothing outside the budget


@pytest.fixture
def silent_psp() -> Iterator[str]:
    """A PSP that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def test_a_psp_that_never_answers_costs_at_most_the_budget(silent_psp: str) -> None:
    # Given a client with 0.3 s attempts and two retries
    psp = PspClient(silent_psp, api_key=lambda: "sk", timeout_seconds=0.3, max_retries=2)
    # When it charges a PSP that never answers
    started = time.monotonic()
    with pytest.raises(PspUnavailable):
        psp.charge(
            idempotency_key="po_1", amount=1, currency="USD", payment_method="tok_visa", merchant_reference="po_1"
        )
    elapsed = time.monotonic() - started
    # Then it gave up after every attempt timed out, within the budget
    assert 3 * 0.3 <= elapsed <= psp.budget.seconds + 0.2
    assert psp.budget.seconds == pytest.approx(0.9 + 0.6)


def test_settings_whose_work_cannot_finish_in_the_timeout_are_refused() -> None:
    # 5 attempts of 5 s (+ pauses) and 3 s of other calls cannot finish in a 30 s function
    with pytest.raises(ValidationError, match="more than the 30 s timeout"):
        PspSettings.model_validate(
            {**BASE, "FUNCTION_TIMEOUT_SECONDS": "30", "PSP_TIMEOUT_SECONDS": "5", "PSP_MAX_RETRIES": "4"}
        )
    # while the same calls fit in a 60 s one
    fits = PspSettings.model_validate(
        {**BASE, "FUNCTION_TIMEOUT_SECONDS": "60", "PSP_TIMEOUT_SECONDS": "5", "PSP_MAX_RETRIES": "4"}
    )
    assert fits.psp_call_budget.seconds == pytest.approx(25 + 0 + 0.6 + 1.0 + 1.8)
