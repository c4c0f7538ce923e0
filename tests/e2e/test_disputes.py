"""Disputes end to end, through the local stack: a tok_createDispute charge is disputed by the PSP's signed
webhook, then closed won or lost at the simulator. After every step the seller's wallet equals the ledger
bucket by bucket (available = seller_payable, reserved = payout_in_transit + dispute_reserve), the trial
balance is zero and the money auditor reports nothing about the scenario; webhooks duplicated and
reordered (the close before the opening, the dispute before the charge's own success) move money once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.disputes.domain import dispute_id_for
from local_stack.stack import LocalStack
from tests.e2e.test_audit_cli import _audit
from tests.e2e.test_payouts import account_balance, fund, wallet
from tests.e2e.test_webhooks import post_event, signing_secret, wait_for_order
from tests.support.api import ApiClient, checkout, unique
from tests.support.psp_signatures import signature_header

FEE = 1500  # the simulator's dispute fee in USD
# Each step waits for a webhook a few seconds away and runs the auditor (a process) once or twice.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def faults(psp: ApiClient) -> Iterator[Callable[..., None]]:
    def set_faults(**flags: bool) -> None:
        assert psp.request("POST", "/v1/_simulator/webhooks", body=flags).status == 200

    yield set_faults
    set_faults(drop=False, duplicate=False, reorder=False)


@pytest.fixture
def state_file(stack: LocalStack, tmp_path: Path) -> Path:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"aws_endpoint": stack.aws_endpoint, "environments": stack.environments}))
    return path


def wait_until(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def disputes_of(api: ApiClient, payment_order_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/disputes?payment_order_id={payment_order_id}")
    assert response.status == 200, response.body
    return list(response.body["disputes"])


def wait_for_dispute(api: ApiClient, payment_order_id: str, status: str) -> dict[str, Any]:
    found = wait_until(lambda: disputes_of(api, payment_order_id), lambda d: [x["status"] for x in d] == [status])
    assert [d["status"] for d in found] == [status], found
    return dict(found[0])


def assert_books(
    api: ApiClient, state_file: Path, seller: str, orders: list[str], *, available: int, disputed: int
) -> None:
    """Wallet == ledger per bucket, exactly (the ledger books asynchronously: wait for it), the trial balance
    is zero, and the auditor finds nothing about this seller, its orders or the disputes queue."""

    def books() -> tuple[dict[str, int], int, int, int]:
        return (
            wallet(api, seller),
            account_balance(api, f"seller_payable:{seller}"),
            account_balance(api, f"payout_in_transit:{seller}"),
            account_balance(api, f"dispute_reserve:{seller}"),
        )

    expected = ({"available": available, "reserved": disputed}, available, 0, disputed)
    assert wait_until(books, lambda found: found == expected, timeout=30) == expected
    assert api.get("/v1/ledger/trial-balance").body["balanced"] is True
    _, report = _audit(state_file)
    about_this = [
        f
        for f in report["findings"]
        if f["check"] == "trial_balance_zero"
        or f["ids"].get("seller_id") == seller
        or f["ids"].get("payment_order_id") in orders
        or "Disputes" in f["ids"].get("queue", "")
    ]
    assert about_this == []


def close_at_psp(psp: ApiClient, psp_dispute_id: str, outcome: str) -> None:
    closed = psp.request("POST", f"/v1/disputes/{psp_dispute_id}/close", body={"outcome": outcome})
    assert (closed.status, closed.body["status"]) == (200, outcome), closed.body


def disputed_checkout(api: ApiClient, seller: str, amount: int) -> str:
    payment = api.wait_for_payment(
        api.post("/v1/payments", checkout((seller, amount, "tok_createDispute"))).body["payment_id"]
    )
    assert payment["status"] == "SUCCEEDED"
    return str(payment["orders"][0]["payment_order_id"])


@pytest.mark.parametrize(("outcome", "available_after"), [("won", 5000 + 3000 - FEE), ("lost", 5000 - FEE)])
def test_a_dispute_won_and_one_lost(
    api: ApiClient, psp: ApiClient, state_file: Path, outcome: str, available_after: int
) -> None:
    # Given a seller with 5000 from one order, and 3000 from an order its buyer will dispute
    seller = unique("seller")
    fund(api, seller, 5000)
    order_id = disputed_checkout(api, seller, 3000)

    # When the PSP opens the dispute (a few seconds later, by signed webhook)
    dispute = wait_for_dispute(api, order_id, "OPEN")

    # Then the 3000 and the PSP's 1500 fee moved from available to reserved, and the ledger holds them
    psp_dispute = psp.get(f"/v1/disputes?merchant_reference={order_id}").body["data"]
    assert [d["id"] for d in psp_dispute] == [dispute["psp_dispute_id"]]
    assert dispute == {
        "dispute_id": dispute_id_for(dispute["psp_dispute_id"]),
        "payment_order_id": order_id,
        "psp_dispute_id": psp_dispute[0]["id"],
        "amount": 3000,
        "fee": FEE,
        "currency": "USD",
        "status": "OPEN",
        "reason": "fraudulent",
    }
    assert api.get(f"/v1/disputes/{dispute['dispute_id']}").body == dispute
    assert_books(api, state_file, seller, [order_id], available=8000 - 3000 - FEE, disputed=3000 + FEE)

    # When the PSP closes it
    close_at_psp(psp, dispute["psp_dispute_id"], outcome)

    # Then won: the 3000 is back in available, the fee gone; lost: both gone to the buyer and the PSP
    closed = wait_for_dispute(api, order_id, outcome.upper())
    assert closed == {**dispute, "status": outcome.upper()}
    assert_books(api, state_file, seller, [order_id], available=available_after, disputed=0)
    reserve = api.get(f"/v1/ledger/entries?account=dispute_reserve:{seller}").body["entries"]
    assert sorted((e["direction"], e["amount"]) for e in reserve) == [("credit", 4500), ("debit", 4500)]
    assert api.get("/v1/disputes/dp_0123456789abcdef0123456789abcdef").status == 404


def test_dispute_webhooks_duplicated_and_reordered_move_money_once(
    api: ApiClient, psp: ApiClient, state_file: Path, faults: Callable[..., None]
) -> None:
    # Given the PSP delivers every webhook twice and holds the dispute's opening back past its close
    faults(duplicate=True, reorder=True)
    seller = unique("seller")
    order_id = disputed_checkout(api, seller, 2000)

    # When the dispute opens at the PSP and is won at once: the close arrives first, then the opening
    opened = wait_until(
        lambda: psp.get(f"/v1/disputes?merchant_reference={order_id}").body["data"], lambda found: bool(found)
    )
    assert len(opened) == 1
    close_at_psp(psp, opened[0]["id"], "won")

    # Then the dispute is WON, and once every copy has arrived the seller lost only the fee, once
    closed = wait_for_dispute(api, order_id, "WON")
    time.sleep(3)  # the held-back openings (two copies) arrive now
    assert disputes_of(api, order_id) == [closed]
    events = [
        e["type"]
        for e in psp.get("/v1/events").body["data"]
        if e["data"]["object"].get("merchant_reference") == order_id and e["type"].startswith("charge.dispute")
    ]
    assert sorted(events) == ["charge.dispute.closed", "charge.dispute.created"]
    assert_books(api, state_file, seller, [order_id], available=2000 - FEE, disputed=0)


def test_a_dispute_before_the_charges_own_success_webhook_and_its_close_twice(
    stack: LocalStack, api: ApiClient, state_file: Path
) -> None:
    # Given an order the PSP leaves pending (its charge.succeeded comes a few seconds later)
    seller = unique("seller")
    payment_id = api.post("/v1/payments", checkout((seller, 2500, "tok_pending"))).body["payment_id"]
    order = wait_for_order(api, payment_id, "PENDING")["orders"][0]
    secret = signing_secret(stack)
    dispute = {
        "id": unique("dp"),
        "object": "dispute",
        "merchant_reference": order["payment_order_id"],
        "amount": 2500,
        "fee": FEE,
        "currency": "USD",
        "reason": "product_not_received",
    }

    def deliver(event_type: str, **changes: str) -> None:
        event = {
            "id": unique("evt"),
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": {**dispute, **changes}},
        }
        body = json.dumps(event).encode()
        for _ in range(2):  # every event twice
            response = post_event(api, body, signature_header(secret, int(time.time()), body))
            assert response.status == 200, response.body

    # When the dispute opens before the charge's own success webhook arrives
    deliver("charge.dispute.created", status="needs_response")
    wait_for_dispute(api, order["payment_order_id"], "OPEN")

    # Then the seller is below zero by amount + fee, reserved holds them, and the books agree
    assert api.get(f"/v1/payments/{payment_id}").body["orders"][0]["status"] == "PENDING"
    assert_books(api, state_file, seller, [], available=-2500 - FEE, disputed=2500 + FEE)

    # When the charge succeeds, and then the dispute is lost (delivered twice)
    assert api.wait_for_payment(payment_id, timeout=60)["status"] == "SUCCEEDED"
    assert_books(api, state_file, seller, [order["payment_order_id"]], available=-FEE, disputed=2500 + FEE)
    deliver("charge.dispute.closed", status="lost")

    # Then the money is gone once: the seller bears the fee
    lost = wait_for_dispute(api, order["payment_order_id"], "LOST")
    assert (lost["amount"], lost["fee"], lost["reason"]) == (2500, FEE, "product_not_received")
    assert_books(api, state_file, seller, [order["payment_order_id"]], available=-FEE, disputed=0)


def test_a_refund_of_a_disputed_charge_is_refused_by_the_psp_and_moves_no_money(
    api: ApiClient, psp: ApiClient, state_file: Path
) -> None:
    # Given a seller with 5000, and an order of 3000 its buyer disputed
    seller = unique("seller")
    fund(api, seller, 5000)
    order_id = disputed_checkout(api, seller, 3000)
    wait_for_dispute(api, order_id, "OPEN")

    # When the marketplace refunds that order too
    accepted = api.post("/v1/refunds", {"payment_order_id": order_id, "amount": 3000})
    assert accepted.status == 202, accepted.body
    refund_id = accepted.body["refund_id"]

    # Then the PSP refuses it (the dispute already returns the buyer's money): FAILED, nothing moved
    refund = wait_until(lambda: api.get(f"/v1/refunds/{refund_id}").body, lambda r: r["status"] != "PENDING")
    assert (refund["status"], refund["failure_code"]) == ("FAILED", "charge_disputed")
    assert psp.get(f"/v1/refunds?merchant_reference={refund_id}").body["data"] == []
    assert_books(api, state_file, seller, [order_id], available=8000 - 3000 - FEE, disputed=3000 + FEE)
