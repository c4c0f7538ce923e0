"""Exactly-once effects under at-least-once delivery and crashes: duplicates and dead execution
environments are injected into the running local stack (not into the code under test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_stack.stack import LocalStack
from tests.e2e.test_pay_in import charges_for, payable_balance, wallet_available
from tests.support.api import ApiClient, checkout, unique


def function_id(stack: LocalStack, handler: str) -> str:
    assert stack.cloud is not None
    return next(f.logical_id for f in stack.cloud.functions.values() if f.handler == handler)


@pytest.fixture
def chaos(stack: LocalStack) -> Iterator[LocalStack]:
    try:
        yield stack
    finally:
        stack.chaos.reset()


def test_every_message_delivered_three_times_moves_money_once(
    chaos: LocalStack, api: ApiClient, psp: ApiClient
) -> None:
    # Given every event-source batch (stream and queues) is delivered three times
    chaos.chaos.duplicate_deliveries = 3
    sellers = [unique("seller") for _ in range(3)]
    body = checkout((sellers[0], 1000), (sellers[1], 2000), (sellers[2], 3000, "tok_chargeDeclined"))

    # When a three-order checkout is paid
    payment = api.wait_for_payment(api.post("/v1/payments", body).body["payment_id"], timeout=180)

    # Then balances, ledger and PSP charges are exactly those of one delivery
    assert payment["status"] == "PARTIALLY_FAILED"
    assert [o["status"] for o in payment["orders"]] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    assert [wallet_available(api, s) for s in sellers] == [1000, 2000, 0]
    assert [payable_balance(api, s) for s in sellers] == [1000, 2000, 0]
    for order, entries_expected in zip(body["orders"], (2, 2, 0), strict=True):
        entries = api.get(f"/v1/ledger/entries?payment_order_id={order['payment_order_id']}").body["entries"]
        assert len(entries) == entries_expected
        assert len(charges_for(psp, order["payment_order_id"])) == 1
    assert api.get("/v1/ledger/trial-balance").body["balanced"] is True


@pytest.mark.parametrize(
    "handler",
    [
        "functions.payment.handler.dispatch_handler",
        "functions.executor.handler.handler",
        "functions.wallet.handler.handler",
        "functions.ledger.handler.handler",
        "functions.payment.handler.order_status_handler",
    ],
)
def test_a_crashed_worker_loses_nothing(chaos: LocalStack, api: ApiClient, psp: ApiClient, handler: str) -> None:
    # Given the next two invocations of one stage die (process killed), e.g. the dispatcher right after
    # the payment was stored and before any order was sent on
    target = function_id(chaos, handler)
    chaos.chaos.crash_next(target, times=2)
    seller = unique("seller")
    body = checkout((seller, 2500), (unique("seller"), 500))

    # When a checkout is paid
    accepted = api.post("/v1/payments", body)
    assert accepted.status == 202
    payment = api.wait_for_payment(accepted.body["payment_id"], timeout=180)

    # Then the crashes happened, and the payment still completed exactly once
    assert chaos.chaos.pending_crashes(target) == 0
    assert payment["status"] == "SUCCEEDED"
    assert wallet_available(api, seller) == 2500
    assert payable_balance(api, seller) == 2500
    for order in body["orders"]:
        assert len(charges_for(psp, order["payment_order_id"])) == 1
