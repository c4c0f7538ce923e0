"""The PSP simulator's brownout: `POST /_sim/brownout` makes every PSP route late and fails a share of
requests with a 503 before anything is done, for a while; `{"seconds": 0}` ends it; it needs the key."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from local_stack.psp.simulator import PspSimulator, bearer

KEY = "sk_test_brownout"
AUTH = bearer(KEY)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def sim() -> Iterator[tuple[PspSimulator, Clock]]:
    simulator = PspSimulator(api_key=KEY)
    clock = Clock()
    simulator.brownout._clock = clock.time
    simulator.brownout._sleep = clock.sleep
    try:
        yield simulator, clock
    finally:
        simulator.webhooks.stop()


def _brownout(simulator: PspSimulator, body: object, headers: dict[str, str] = AUTH) -> tuple[int, object]:
    reply = simulator.handle("POST", "/_sim/brownout", headers, json.dumps(body).encode())
    return reply.status, reply.body


def _charge(simulator: PspSimulator, key: str) -> int:
    body = {"amount": 500, "currency": "USD", "payment_method": "tok_visa", "merchant_reference": key}
    return simulator.handle("POST", "/v1/charges", {**AUTH, "Idempotency-Key": key}, json.dumps(body).encode()).status


def test_a_brownout_delays_every_request_and_fails_its_share_before_charging(
    sim: tuple[PspSimulator, Clock],
) -> None:
    simulator, clock = sim
    # Given a brownout of 3 s latency and 60% 503s, for 60 s
    assert _brownout(simulator, {"latency_ms": 3000, "error_rate": 0.6, "seconds": 60}) == (200, {"until": 1_000_060})
    # When 100 orders are charged during it
    statuses = [_charge(simulator, f"po_{i}") for i in range(100)]
    # Then each request waited 3 s, about 60% failed with a 503, and only the others were charged
    assert clock.slept == [3.0] * 100
    failed = statuses.count(503)
    assert 45 <= failed <= 75
    assert statuses.count(200) == 100 - failed
    assert len(simulator.charges.all()) == 100 - failed
    assert (simulator.brownout.degraded, simulator.brownout.failed) == (100, failed)


def test_the_same_seed_fails_the_same_requests(sim: tuple[PspSimulator, Clock]) -> None:
    simulator, _ = sim
    _brownout(simulator, {"latency_ms": 0, "error_rate": 0.5, "seconds": 60, "seed": 7})
    first = [_charge(simulator, f"a_{i}") for i in range(30)]
    _brownout(simulator, {"latency_ms": 0, "error_rate": 0.5, "seconds": 60, "seed": 7})
    second = [_charge(simulator, f"b_{i}") for i in range(30)]
    assert first == second
    assert 503 in first and 200 in first


def test_it_ends_on_time_or_on_request(sim: tuple[PspSimulator, Clock]) -> None:
    simulator, clock = sim
    _brownout(simulator, {"latency_ms": 100, "error_rate": 1, "seconds": 10})
    assert _charge(simulator, "po_during") == 503
    clock.now += 10
    assert _charge(simulator, "po_after") == 200
    _brownout(simulator, {"latency_ms": 100, "error_rate": 1, "seconds": 10})
    assert _brownout(simulator, {"seconds": 0}) == (200, {"until": int(clock.now)})
    assert _charge(simulator, "po_ended") == 200
    assert clock.slept == [0.1]


def test_the_simulators_own_controls_are_never_degraded(sim: tuple[PspSimulator, Clock]) -> None:
    simulator, clock = sim
    _brownout(simulator, {"latency_ms": 500, "error_rate": 1, "seconds": 60})
    assert _brownout(simulator, {"latency_ms": 500, "error_rate": 1, "seconds": 30})[0] == 200
    listed = simulator.handle("GET", "/v1/charges?merchant_reference=po_1", AUTH, b"")
    assert listed.status == 503  # a PSP route
    assert clock.slept == [0.5]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "seconds"),
        ({"seconds": -1}, "seconds"),
        ({"seconds": "60"}, "seconds"),
        ({"seconds": 60, "latency_ms": 1.5}, "latency_ms"),
        ({"seconds": 60, "latency_ms": 60_001}, "latency_ms"),
        ({"seconds": 60, "error_rate": 1.1}, "error_rate"),
        ({"seconds": 60, "error_rate": True}, "error_rate"),
        ({"seconds": 60, "seed": "x"}, "seed"),
    ],
)
def test_a_bad_request_is_refused_and_starts_nothing(
    sim: tuple[PspSimulator, Clock], body: dict[str, object], param: str
) -> None:
    simulator, _ = sim
    status, reply = _brownout(simulator, body)
    assert status == 400
    assert isinstance(reply, dict) and reply["error"]["param"] == param
    assert _charge(simulator, "po_1") == 200


def test_it_needs_the_key(sim: tuple[PspSimulator, Clock]) -> None:
    simulator, _ = sim
    assert _brownout(simulator, {"latency_ms": 0, "error_rate": 1, "seconds": 60}, headers={})[0] == 401
    assert _charge(simulator, "po_1") == 200
