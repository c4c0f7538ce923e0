"""The one PSP client against the PSP simulator over loopback HTTP: charges, refunds and the lookup by
idempotency key, each sent with the API key as a bearer token. A refused key is never a business failure
(no failed order or refund): the caller retries later. (Payouts: test_payout_provider_client.py.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from functions.psp.client import PspClient
from functions.psp.models import ChargeResult, PspUnavailable, RefundResult
from local_stack.loopback import LoopbackServer
from local_stack.psp.simulator import PspSimulator, psp_server
from tests.support.ports import free_port

KEY = "sk_test_client"


@pytest.fixture
def simulator() -> Iterator[tuple[PspSimulator, str]]:
    sim = PspSimulator(api_key=KEY)
    port = free_port()
    server: LoopbackServer = psp_server(sim, host="127.0.0.1", port=port)
    server.start()
    try:
        yield sim, f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        sim.webhooks.stop()


def client(url: str, key: str, calls: list[str] | None = None) -> PspClient:
    def api_key() -> str:
        if calls is not None:
            calls.append(key)
        return key

    return PspClient(url, api_key=api_key, timeout_seconds=2, max_retries=0)


def _charge(psp: PspClient, key: str = "po_1", token: str = "tok_visa", amount: int = 1000) -> ChargeResult:
    return psp.charge(idempotency_key=key, amount=amount, currency="USD", payment_method=token, merchant_reference=key)


def test_every_call_carries_the_key(simulator: tuple[PspSimulator, str]) -> None:
    sim, url = simulator
    calls: list[str] = []
    psp = client(url, KEY, calls)
    # Given nothing read yet
    assert calls == []

    charged = _charge(psp)
    refunded = psp.refund(idempotency_key="re_1", charge_reference=str(charged.psp_reference), amount=400)
    found = psp.charge_by_idempotency_key("po_1")
    missing = psp.charge_by_idempotency_key("po_never")

    assert (charged.status, charged.failure_code) == ("succeeded", None)
    assert refunded.status == "succeeded" and refunded.psp_reference is not None
    assert refunded.psp_reference.startswith("re_")
    assert found == charged
    assert missing is None
    # Then the key was fetched once per request
    assert calls == [KEY] * 4
    assert [r.amount for r in sim.refunds.find(charge=charged.psp_reference)] == [400]


def test_declines_and_refusals_are_results_not_errors(simulator: tuple[PspSimulator, str]) -> None:
    _, url = simulator
    psp = client(url, KEY)
    declined = _charge(psp, "po_declined", "tok_chargeDeclined")
    assert (declined.status, declined.failure_code) == ("failed", "card_declined")
    assert declined.psp_reference is not None
    charged = _charge(psp, "po_2", amount=500)
    too_much = psp.refund(idempotency_key="re_2", charge_reference=str(charged.psp_reference), amount=501)
    assert too_much == RefundResult("failed", None, "amount_too_large")


def test_a_refund_replayed_with_its_key_refunds_once(simulator: tuple[PspSimulator, str]) -> None:
    sim, url = simulator
    psp = client(url, KEY)
    charged = _charge(psp, "po_3", amount=500)
    first = psp.refund(idempotency_key="re_3", charge_reference=str(charged.psp_reference), amount=500)
    again = psp.refund(idempotency_key="re_3", charge_reference=str(charged.psp_reference), amount=500)
    assert first == again
    assert [r.amount for r in sim.refunds.find(charge=charged.psp_reference)] == [500]


Call = Callable[[PspClient], Any]
CALLS: dict[str, Call] = {
    "charge": _charge,
    "refund": lambda psp: psp.refund(idempotency_key="re_x", charge_reference="ch_x", amount=1),
    "lookup": lambda psp: psp.charge_by_idempotency_key("po_1"),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_refused_key_is_unavailability_and_nothing_happens(simulator: tuple[PspSimulator, str], call: Call) -> None:
    sim, url = simulator
    with pytest.raises(PspUnavailable, match=r"PSP refused our API key \(401\)"):
        call(client(url, "sk_test_wrong"))
    assert (sim.charges.all(), sim.refunds.find()) == ([], [])
