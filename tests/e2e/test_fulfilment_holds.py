"""Fulfilment holds end to end through the local stack: an order placed with `"hold": "until_fulfilled"` is
credited to its seller's `pending` balance (booked to seller_pending), cannot be paid out, and moves to
`available` once - on `POST /v1/payment-orders/{id}/fulfil`, or when the hourly sweep finds its hold period
over. A refund before the release takes from the hold first.

After every scenario, per seller: the wallet's available == seller_payable and pending == seller_pending,
the trial balance is zero, and the money auditor finds nothing about the scenario's ids."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from local_stack.stack import LocalStack
from tests.support.api import ApiClient, checkout, new_key, unique
from tests.support.bank_accounts import us_account_body
from tests.support.refunds import audit_findings, fail_at_psp, wait_for_refund


def held_checkout(*orders: tuple[str, int, int, str]) -> dict[str, Any]:
    """A checkout whose orders are (seller_id, amount, application_fee, hold)."""
    body = checkout(*((seller, amount) for seller, amount, _, _ in orders))
    for entry, (_, _, fee, hold) in zip(body["orders"], orders, strict=True):
        entry["application_fee"] = fee
        entry["hold"] = hold
    return body


def paid(api: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    accepted = api.post("/v1/payments", body)
    assert accepted.status == 202, accepted.body
    payment = api.wait_for_payment(accepted.body["payment_id"])
    assert payment["status"] == "SUCCEEDED", payment
    return payment


def account(api: ApiClient, name: str) -> int:
    entries = api.get(f"/v1/ledger/entries?account={name}").body["entries"]
    return sum(e["amount"] if e["direction"] == "credit" else -e["amount"] for e in entries if e["currency"] == "USD")


def books(api: ApiClient, seller: str) -> tuple[int, int, int, int]:
    """(wallet available, seller_payable, wallet pending, seller_pending)."""
    balance = api.get(f"/v1/wallets/{seller}").body["balances"].get("USD", {})
    return (
        int(balance.get("available", 0)),
        account(api, f"seller_payable:{seller}"),
        int(balance.get("pending", 0)),
        account(api, f"seller_pending:{seller}"),
    )


def assert_books(api: ApiClient, seller: str, *, available: int, pending: int) -> None:
    """The wallet and the ledger both reach these buckets (each moves asynchronously: wait), and the trial
    balance is zero."""
    deadline = time.monotonic() + 30
    while (found := books(api, seller)) != (available, available, pending, pending):
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    assert api.get("/v1/ledger/trial-balance").body["balanced"] is True


def test_a_held_order_waits_in_pending_until_fulfilled_and_moves_once(
    api: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given a checkout of a held order (10,000, commission 1,500) and an unheld one for another seller
    held_seller, free_seller = unique("seller"), unique("seller")
    api.onboard(held_seller, us_account_body(held_seller))
    payment = paid(
        api,
        held_checkout((held_seller, 10_000, 1_500, "until_fulfilled"), (free_seller, 3_000, 0, "none")),
    )
    held, free = (o["payment_order_id"] for o in payment["orders"])
    assert [(o["hold"], o["application_fee"]) for o in payment["orders"]] == [("until_fulfilled", 1_500), ("none", 0)]

    # Then the held seller's 8,500 is pending, not available, and cannot be paid out; the other seller's is
    assert_books(api, held_seller, available=0, pending=8_500)
    assert_books(api, free_seller, available=3_000, pending=0)
    refused = api.post("/v1/payouts", {"seller_id": held_seller, "amount": 1, "currency": "USD"})
    assert (refused.status, refused.body["error"]["code"]) == (422, "insufficient_funds")
    entries = api.get(f"/v1/ledger/entries?payment_order_id={held}").body["entries"]
    assert sorted((e["account"], e["direction"], e["amount"]) for e in entries) == sorted(
        [
            ("psp_receivable", "debit", 10_000),
            (f"seller_pending:{held_seller}", "credit", 8_500),
            ("platform_revenue", "credit", 1_500),
        ]
    )

    # When the marketplace confirms fulfilment, three times at once
    answers = [api.request("POST", f"/v1/payment-orders/{held}/fulfil") for _ in range(3)]

    # Then each answer is the same 200, and the share moved to available once
    assert {a.status for a in answers} == {200}
    assert answers[0].body == {
        "payment_order_id": held,
        "payment_id": payment["payment_id"],
        "seller_id": held_seller,
        "amount": 10_000,
        "application_fee": 1_500,
        "currency": "USD",
        "hold": "until_fulfilled",
        "release": "requested",
    }
    assert_books(api, held_seller, available=8_500, pending=0)
    time.sleep(1)  # any further release would have landed by now
    assert_books(api, held_seller, available=8_500, pending=0)

    # And now it can be paid out
    payout = api.post("/v1/payouts", {"seller_id": held_seller, "amount": 8_500, "currency": "USD"})
    assert payout.status == 202, payout.body

    # An order without a hold, or unknown, cannot be fulfilled
    not_held = api.request("POST", f"/v1/payment-orders/{free}/fulfil")
    assert (not_held.status, not_held.body["error"]["code"], not_held.body["error"]["param"]) == (
        409,
        "order_not_held",
        "payment_order_id",
    )
    missing = api.request("POST", f"/v1/payment-orders/{unique('po')}/fulfil")
    assert (missing.status, missing.body["error"]["code"]) == (404, "resource_missing")
    assert audit_findings(stack, tmp_path, held_seller, free_seller, held, free) == []


def test_an_order_not_charged_yet_cannot_be_fulfilled(api: ApiClient) -> None:
    # A held order the PSP leaves pending (settled by webhook a few seconds later)
    seller = unique("seller")
    body = held_checkout((seller, 2_000, 0, "until_fulfilled"))
    body["payment_method"] = "tok_pending"
    accepted = api.post("/v1/payments", body)
    assert accepted.status == 202, accepted.body
    order = accepted.body["orders"][0]["payment_order_id"]

    # Right after it was accepted (not yet claimed, charging, or pending at the PSP): not charged
    early = api.request("POST", f"/v1/payment-orders/{order}/fulfil")
    assert (early.status, early.body["error"]["code"]) == (409, "order_not_charged")
    assert_books(api, seller, available=0, pending=0)

    # Once it succeeded, fulfilment releases it
    payment = api.wait_for_payment(accepted.body["payment_id"])
    assert payment["status"] == "SUCCEEDED"
    assert api.request("POST", f"/v1/payment-orders/{order}/fulfil").status == 200
    assert_books(api, seller, available=2_000, pending=0)


def test_the_hourly_sweep_releases_holds_whose_period_is_over(
    api: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given a held order nobody confirms
    seller = unique("seller")
    payment = paid(api, held_checkout((seller, 4_000, 400, "until_fulfilled")))
    order = payment["orders"][0]["payment_order_id"]
    assert_books(api, seller, available=0, pending=3_600)

    # When the sweep runs before the hold period (7 days) is over, nothing moves
    assert stack.scheduler is not None
    now = datetime.now(UTC)
    # (every hold in this run was credited within minutes: none is due a day before its 7 days are over)
    early = stack.scheduler.trigger("HoldSweepSchedule", when=now + timedelta(days=6))
    assert early == {"releases_asked": 0}
    assert_books(api, seller, available=0, pending=3_600)

    # When it runs after, the share is released; and a later sweep or a late fulfilment moves nothing more
    stack.scheduler.trigger("HoldSweepSchedule", when=now + timedelta(days=7, hours=1))
    assert_books(api, seller, available=3_600, pending=0)
    stack.scheduler.trigger("HoldSweepSchedule", when=now + timedelta(days=7, hours=2))
    assert api.request("POST", f"/v1/payment-orders/{order}/fulfil").status == 200
    time.sleep(1)
    assert_books(api, seller, available=3_600, pending=0)
    assert audit_findings(stack, tmp_path, seller, order) == []


def test_a_refund_before_fulfilment_takes_from_the_hold_first(
    api: ApiClient, psp: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given a held order of 10,000 with a commission of 1,000
    seller = unique("seller")
    payment = paid(api, held_checkout((seller, 10_000, 1_000, "until_fulfilled")))
    order = payment["orders"][0]["payment_order_id"]
    assert_books(api, seller, available=0, pending=9_000)

    # When 4,000 of it is refunded (giving back 400 of the commission)
    accepted = api.post("/v1/refunds", {"payment_order_id": order, "amount": 4_000}, idempotency_key=new_key())
    assert accepted.status == 202, accepted.body
    done = wait_for_refund(api, accepted.body["refund_id"])
    assert (done["status"], done["application_fee_refunded"]) == ("SUCCEEDED", 400)

    # Then the seller's 3,600 came out of the hold, and the refund journal says so
    assert_books(api, seller, available=0, pending=5_400)
    entries = api.get(f"/v1/ledger/entries?payment_order_id={order}").body["entries"]
    refund_lines = sorted(
        (e["account"], e["direction"], e["amount"]) for e in entries if e["reference"] == done["refund_id"]
    )
    assert refund_lines == sorted(
        [
            (f"seller_pending:{seller}", "debit", 3_600),
            ("platform_revenue", "debit", 400),
            ("psp_receivable", "credit", 4_000),
        ]
    )

    # When the PSP fails that refund afterwards, while the hold lasts: its 3,600 goes back to the hold
    fail_at_psp(api, psp, done["refund_id"])
    assert_books(api, seller, available=0, pending=9_000)

    # And a second refund of 2,000 takes from the hold again; fulfilment releases what is left
    second = api.post("/v1/refunds", {"payment_order_id": order, "amount": 2_000}, idempotency_key=new_key())
    assert wait_for_refund(api, second.body["refund_id"])["status"] == "SUCCEEDED"
    assert_books(api, seller, available=0, pending=7_200)
    assert api.request("POST", f"/v1/payment-orders/{order}/fulfil").status == 200
    assert_books(api, seller, available=7_200, pending=0)
    assert audit_findings(stack, tmp_path, seller, order) == []


def test_a_hold_that_is_not_a_known_value_is_a_400_that_stores_nothing(api: ApiClient) -> None:
    seller = unique("seller")
    body = held_checkout((seller, 500, 0, "until_shipped"))
    key = new_key()
    refused = api.post("/v1/payments", body, idempotency_key=key)
    assert (refused.status, refused.body["error"]["code"], refused.body["error"]["param"]) == (
        400,
        "parameter_invalid",
        "orders[0].hold",
    )
    # The same key and order ids work once the hold is put right
    body["orders"][0]["hold"] = "until_fulfilled"
    assert api.post("/v1/payments", body, idempotency_key=key).status == 202
