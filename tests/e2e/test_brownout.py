"""A brownout rides through: while the PSP simulator (or the payout provider's) answers late and fails most
requests, payments (or payouts) keep coming; once it ends, every one completes, charged or paid out exactly
once, with nothing dead-lettered and no function timed out; the provider's trouble never opens the PSP's
circuit.

The figures are the issue's by default (3 s latency, 60% 503s, 60 s, 100 orders, 10 payouts); each can be
set with PAYMENTS_BROWNOUT_LATENCY_MS, PAYMENTS_BROWNOUT_ERROR_RATE, PAYMENTS_BROWNOUT_SECONDS,
PAYMENTS_BROWNOUT_ORDERS and PAYMENTS_BROWNOUT_PAYOUTS. Run with `-s` to see the figures measured."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from functions.payout_provider.client import payee_id
from local_stack.stack import LocalStack
from tests.e2e.test_pay_in import charges_for, payable_balance, wallet_available
from tests.e2e.test_payouts import assert_books_agree, fund
from tests.support.api import ApiClient, checkout, unique
from tests.support.bank_accounts import us_account_body

LATENCY_MS = int(os.environ.get("PAYMENTS_BROWNOUT_LATENCY_MS", "3000"))
ERROR_RATE = float(os.environ.get("PAYMENTS_BROWNOUT_ERROR_RATE", "0.6"))
SECONDS = int(os.environ.get("PAYMENTS_BROWNOUT_SECONDS", "60"))
ORDERS = int(os.environ.get("PAYMENTS_BROWNOUT_ORDERS", "100"))
PAYOUTS = int(os.environ.get("PAYMENTS_BROWNOUT_PAYOUTS", "10"))
ORDERS_PER_CHECKOUT = 4
# After the brownout ends, everything must be done within this. Locally the PSP workers back off for at
# most 4 s and the circuit cools down for 5 s (local_stack/stack.py); the bound leaves room for a loaded
# two-core machine, where charging, crediting and booking 100 orders takes a minute or two.
CONVERGENCE_SECONDS = 300
# The brownout, its convergence and the checks take minutes, not the suite's default five for everything.
pytestmark = pytest.mark.timeout(SECONDS + CONVERGENCE_SECONDS + 480)


@dataclass
class Watch:
    """What the stack looked like before the brownout: DLQ depths and function timeouts."""

    dead_letters: dict[str, int]
    timeouts: dict[str, int]


def _dead_letter_queues(stack: LocalStack) -> dict[str, str]:
    """Every queue that holds what failed for good: each queue's DLQ and the failure destinations."""
    assert stack.cloud is not None
    return {
        r.logical_id: r.ref
        for r in stack.cloud.physical.values()
        if r.type == "AWS::SQS::Queue" and ("Dlq" in r.logical_id or "Failures" in r.logical_id)
    }


def _dead_letters(stack: LocalStack, aws: Any) -> dict[str, int]:
    sqs = aws("sqs")
    depths = {}
    for logical_id, url in _dead_letter_queues(stack).items():
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        depths[logical_id] = sum(int(v) for v in attributes.values())
    return depths


PSP_BROWNOUT = "/_sim/brownout"
PROVIDER_BROWNOUT = "/payouts/v1/_simulator/brownout"


def _circuit_status(stack: LocalStack, aws: Any, circuit: str = "psp") -> str:
    assert stack.cloud is not None
    table = next(
        f.environment["PSP_CIRCUIT_TABLE_NAME"]
        for f in stack.cloud.functions.values()
        if "PSP_CIRCUIT_TABLE_NAME" in f.environment
    )
    item = aws("dynamodb").get_item(TableName=table, Key={"circuit": {"S": circuit}}).get("Item")
    return "closed" if item is None else str(item["status"]["S"])


@pytest.fixture
def watch(stack: LocalStack, aws: Any, psp: ApiClient, provider: ApiClient, api: ApiClient) -> Iterator[Watch]:
    assert stack.lambdas is not None
    before = Watch(_dead_letters(stack, aws), dict(stack.lambdas.timeouts()))
    assert len(before.dead_letters) >= 10
    try:
        yield before
    finally:
        psp.post("/_sim/brownout", {"seconds": 0})  # never leave the shared stack browned out
        provider.post(PROVIDER_BROWNOUT, {"seconds": 0})


def _brownout(simulator: ApiClient, control: str = PSP_BROWNOUT) -> float:
    started = simulator.post(control, {"latency_ms": LATENCY_MS, "error_rate": ERROR_RATE, "seconds": SECONDS})
    assert started.status == 200, started.body
    return float(started.body["until"])


def _ride_out(
    stack: LocalStack,
    aws: Any,
    simulator: ApiClient,
    until: float,
    *,
    circuit: str = "psp",
    control: str = PSP_BROWNOUT,
) -> set[str]:
    """Wait out the brownout (watching the service's circuit), then end it; the circuit states seen."""
    seen = set()
    while time.time() < until:
        seen.add(_circuit_status(stack, aws, circuit))
        time.sleep(0.5)
    ended = simulator.post(control, {"seconds": 0})
    assert ended.status == 200, ended.body
    return seen


def _converge(done: Callable[[], bool]) -> float:
    """Seconds until `done()`; fails the test past CONVERGENCE_SECONDS."""
    started = time.monotonic()
    while not done():
        assert time.monotonic() - started < CONVERGENCE_SECONDS, "did not converge in time"
        time.sleep(1)
    return time.monotonic() - started


def _assert_nothing_dead_lettered_or_timed_out(stack: LocalStack, aws: Any, api: ApiClient, before: Watch) -> None:
    assert stack.lambdas is not None
    assert _dead_letters(stack, aws) == before.dead_letters
    assert stack.lambdas.timeouts() == before.timeouts
    health = api.get("/health")
    assert (health.status, health.body["function_timeouts"]) == (200, before.timeouts)


def test_a_brownout_during_checkouts_ends_with_every_order_charged_once(
    stack: LocalStack, aws: Any, api: ApiClient, psp: ApiClient, watch: Watch
) -> None:
    simulator = stack.psp_simulator
    assert simulator is not None
    degraded_before, failed_before = simulator.brownout.degraded, simulator.brownout.failed
    # Given the PSP browns out (3 s latency, 60% 503s, for 60 s)
    until = _brownout(psp)
    # When 100 orders are paid across 25 checkouts while it lasts
    orders: list[tuple[str, str, int]] = []  # (payment_order_id, seller, amount)
    payment_ids = []
    for start in range(0, ORDERS, ORDERS_PER_CHECKOUT):
        sellers = [(unique("seller"), 100 + i) for i in range(start, min(start + ORDERS_PER_CHECKOUT, ORDERS))]
        body = checkout(*sellers)
        accepted = api.post("/v1/payments", body)
        assert accepted.status == 202, accepted.body
        payment_ids.append(accepted.body["payment_id"])
        orders += [(o["payment_order_id"], o["seller_id"], o["amount"]) for o in body["orders"]]
    assert time.time() < until, "the checkouts took longer than the brownout"
    # And the brownout runs its course, then is ended
    circuit_seen = _ride_out(stack, aws, psp, until)
    ended = time.monotonic()

    # Then every payment completes within a bounded time: charged, credited and booked
    def all_done() -> bool:
        payments = [api.get(f"/v1/payments/{p}").body for p in payment_ids]
        return all(
            p["status"] == "SUCCEEDED" and all(o["wallet_updated"] and o["ledger_updated"] for o in p["orders"])
            for p in payments
        )

    converged = _converge(all_done)
    # Each order charged exactly once at the PSP, credited once and booked once
    charges = {order_id: len(charges_for(psp, order_id)) for order_id, _, _ in orders}
    assert set(charges.values()) == {1}
    for order_id, seller, amount in orders:
        assert wallet_available(api, seller) == amount
        assert payable_balance(api, seller) == amount
        entries = api.get(f"/v1/ledger/entries?payment_order_id={order_id}").body["entries"]
        assert sorted((e["direction"], e["amount"]) for e in entries) == [("credit", amount), ("debit", amount)]
    assert api.get("/v1/ledger/trial-balance").body["balanced"] is True
    # And the circuit opened during the brownout, nothing was dead-lettered and no function timed out
    assert "open" in circuit_seen
    _assert_nothing_dead_lettered_or_timed_out(stack, aws, api, watch)
    print(
        f"\nbrownout (pay-in): {ORDERS} orders, {LATENCY_MS} ms latency, {ERROR_RATE:.0%} 503s, {SECONDS} s; "
        f"PSP requests degraded {simulator.brownout.degraded - degraded_before}, "
        f"503s {simulator.brownout.failed - failed_before}; circuit states seen {sorted(circuit_seen)}; "
        f"converged {converged:.1f} s after the end ({time.monotonic() - ended:.1f} s incl. checks); "
        f"charges per order {sorted(set(charges.values()))}; DLQ depths {sum(_dead_letters(stack, aws).values())}; "
        f"timeouts {stack.lambdas.timeouts() if stack.lambdas else None}"
    )


def test_a_payout_provider_brownout_ends_with_every_payout_paid_once(
    stack: LocalStack, aws: Any, api: ApiClient, psp: ApiClient, provider: ApiClient, watch: Watch
) -> None:
    assert stack.psp_simulator is not None
    simulator = stack.psp_simulator.payout_provider
    # Given sellers with money to pay out (funded before the brownout)
    sellers = [unique("seller") for _ in range(PAYOUTS)]
    for seller in sellers:
        api.onboard(seller, us_account_body(seller))
        fund(api, seller, 5_000)
    degraded_before, failed_before = simulator.brownout.degraded, simulator.brownout.failed
    # When the payout provider browns out (the PSP does not) and each seller asks for a payout of 3000 while it
    # lasts
    until = _brownout(provider, PROVIDER_BROWNOUT)
    payout_ids = {}
    for seller in sellers:
        accepted = api.post("/v1/payouts", {"seller_id": seller, "amount": 3_000, "currency": "USD"})
        assert accepted.status == 202, accepted.body
        payout_ids[seller] = accepted.body["payout_id"]
    assert time.time() < until
    circuit_seen = _ride_out(stack, aws, provider, until, circuit="payout-provider", control=PROVIDER_BROWNOUT)
    assert _circuit_status(stack, aws) == "closed"  # the PSP's own circuit never saw the provider's trouble

    # Then every payout is paid within a bounded time, once at the provider, and the books agree
    def all_paid() -> bool:
        statuses = {api.get(f"/v1/payouts/{p}").body["status"] for p in payout_ids.values()}
        assert "FAILED" not in statuses
        return statuses == {"PAID"}

    converged = _converge(all_paid)
    for seller, payout_id in payout_ids.items():
        paid = provider.get(f"/payouts/v1/payments?reference={payout_id}").body["data"]
        assert [(p["amount"], p["status"], p["payee_id"]) for p in paid] == [(3_000, "paid", payee_id(seller, 1))]
        assert_books_agree(api, seller, available=2_000, reserved=0)
    # And the payouts did meet the brownout (ten payouts may be too few calls to open the circuit: it
    # judges at least 10 calls in 10 s), the PSP's circuit never saw it, nothing was dead-lettered and no
    # function timed out
    assert simulator.brownout.degraded > degraded_before
    _assert_nothing_dead_lettered_or_timed_out(stack, aws, api, watch)
    print(
        f"\nprovider brownout (payouts): {PAYOUTS} payouts, {LATENCY_MS} ms latency, {ERROR_RATE:.0%} 503s, "
        f"{SECONDS} s; "
        f"provider requests degraded {simulator.brownout.degraded - degraded_before}, "
        f"503s {simulator.brownout.failed - failed_before}; circuit states seen {sorted(circuit_seen)}; "
        f"converged {converged:.1f} s after the end; DLQ depths {sum(_dead_letters(stack, aws).values())}; "
        f"timeouts {stack.lambdas.timeouts() if stack.lambdas else None}"
    )
