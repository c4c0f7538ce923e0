"""The simulator's refunds: tok_refundFail charges succeed and their refunds fail by webhook (failed refunds
leave the charge refundable), other refunds succeed at once, and a succeeded one can be failed later."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from local_stack.psp.simulator import PspSimulator


@pytest.fixture
def simulator() -> Iterator[PspSimulator]:
    sim = PspSimulator(api_key="sk_test_unit")
    sim.refunds.fail_delay = 0.05
    try:
        yield sim
    finally:
        sim.webhooks.stop()


def charge(sim: PspSimulator, token: str, amount: int = 1000) -> str:
    request = {"amount": amount, "currency": "USD", "payment_method": token, "merchant_reference": "po_1"}
    reply = sim.charges.create(f"key-{token}", request)
    assert (reply.status, reply.body["status"]) == (200, "succeeded")
    return str(reply.body["id"])


def test_a_refund_of_a_refund_fail_charge_is_pending_then_fails_by_webhook(simulator: PspSimulator) -> None:
    charge_id = charge(simulator, "tok_refundFail")
    reply = simulator.refunds.create("rf_1", {"charge": charge_id, "amount": 600, "merchant_reference": "rf_1"})
    assert (reply.status, reply.body["status"], reply.body["merchant_reference"]) == (200, "pending", "rf_1")
    simulator.refunds.create("rf_1", {"charge": charge_id, "amount": 600, "merchant_reference": "rf_1"})  # a retry
    # (the timer fails it a moment later, then sends its webhook: wait for both, the CI run saw the gap)
    for _ in range(500):
        if simulator.refunds.find(charge=charge_id)[0].status == "failed" and len(simulator.webhooks.sent) >= 2:
            break
        time.sleep(0.02)
    (refund,) = simulator.refunds.find(merchant_reference="rf_1")
    assert (refund.status, refund.failure_code) == ("failed", "expired_or_canceled_card")
    sent = [(e["type"], e["data"]["object"]["merchant_reference"]) for e in simulator.webhooks.sent]
    assert sent == [("refund.created", "rf_1"), ("refund.failed", "rf_1")]
    # A failed refund leaves the whole charge refundable
    again = simulator.refunds.create("rf_2", {"charge": charge_id, "amount": 1000, "merchant_reference": "rf_2"})
    assert again.status == 200


def test_refunds_succeed_within_the_charge_and_can_fail_afterwards(simulator: PspSimulator) -> None:
    charge_id = charge(simulator, "tok_visa")
    first = simulator.refunds.create("rf_a", {"charge": charge_id, "amount": 700, "merchant_reference": "rf_a"})
    assert first.body["status"] == "succeeded"
    over = simulator.refunds.create("rf_b", {"charge": charge_id, "amount": 301, "merchant_reference": "rf_b"})
    assert (over.status, over.body["error"]["code"]) == (400, "amount_too_large")
    failed = simulator.refunds.fail(str(first.body["id"]))
    assert (failed.status, failed.body["status"]) == (200, "failed")
    assert [e["type"] for e in simulator.webhooks.sent] == ["refund.failed"]
    assert [(r.amount, r.status) for r in simulator.refunds.find(charge=charge_id)] == [(700, "failed")]
