"""Refunds end to end through the local stack: the API, the outbox on the refunds table's stream, the refund
executor at the PSP simulator, its signed refund webhooks, the wallet's debit and the ledger's journal.

After every scenario: the seller's wallet available == the ledger's seller_payable, the trial balance is
zero, and the money auditor finds nothing about the scenario's ids."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from functions.refund.domain import orphan_refund_id
from local_stack.stack import LocalStack
from tests.support.api import ApiClient, checkout, new_key, unique
from tests.support.bank_accounts import us_account_body
from tests.support.psp_signatures import signature_header
from tests.support.refunds import assert_books, audit_findings, fail_at_psp, paid_orders, wait_for_refund


@pytest.fixture
def faults(psp: ApiClient) -> Iterator[Any]:
    def set_faults(**flags: bool) -> None:
        assert psp.request("POST", "/v1/_simulator/webhooks", body=flags).status == 200

    yield set_faults
    set_faults(drop=False, duplicate=False, reorder=False)


def refund(api: ApiClient, payment_order_id: str, amount: int | None = None, **extra: Any) -> Any:
    body: dict[str, Any] = {"payment_order_id": payment_order_id, "reason": "requested_by_customer", **extra}
    if amount is not None:
        body["amount"] = amount
    return api.post("/v1/refunds", body)


def psp_refunds(psp: ApiClient, charge: str) -> list[tuple[int, str]]:
    return [(r["amount"], r["status"]) for r in psp.get(f"/v1/refunds?charge={charge}").body["data"]]


def order_view(api: ApiClient, payment_id: str, index: int = 0) -> dict[str, Any]:
    return dict(api.get(f"/v1/payments/{payment_id}").body["orders"][index])


def journal_lines(api: ApiClient, payment_order_id: str) -> list[tuple[str, str, int]]:
    entries = api.get(f"/v1/ledger/entries?payment_order_id={payment_order_id}").body["entries"]
    return sorted((e["account"], e["direction"], e["amount"]) for e in entries)


def test_a_partial_refund_then_the_rest(api: ApiClient, psp: ApiClient, stack: LocalStack, tmp_path: Path) -> None:
    # Given a seller paid 10000 for one order
    seller = unique("seller")
    payment = paid_orders(api, (seller, 10_000))
    order = payment["orders"][0]
    po = order["payment_order_id"]

    # When 3000 is refunded
    key = new_key()
    body = {"payment_order_id": po, "amount": 3000, "reason": "requested_by_customer"}
    first = api.post("/v1/refunds", body, idempotency_key=key)

    # Then it is accepted PENDING, then SUCCEEDED, and the same key and body answer the stored response
    assert first.status == 202, first.body
    assert {k: first.body[k] for k in ("payment_order_id", "amount", "currency", "status", "reason")} == {
        "payment_order_id": po,
        "amount": 3000,
        "currency": "USD",
        "status": "PENDING",
        "reason": "requested_by_customer",
    }
    replay = api.post("/v1/refunds", body, idempotency_key=key)
    assert (replay.status, replay.body, replay.headers.get("idempotent-replayed")) == (202, first.body, "true")
    other_body = api.post("/v1/refunds", {**body, "amount": 3001}, idempotency_key=key)
    assert (other_body.status, other_body.body["error"]["type"]) == (422, "idempotency_error")
    assert wait_for_refund(api, first.body["refund_id"])["status"] == "SUCCEEDED"
    assert_books(api, seller, 7000)

    # When the rest is refunded (no amount)
    rest = refund(api, po)
    assert rest.status == 202, rest.body
    assert rest.body["amount"] == 7000
    assert wait_for_refund(api, rest.body["refund_id"])["status"] == "SUCCEEDED"

    # Then the PSP refunded the charge twice, the order shows it all refunded, and nothing is left to refund
    assert psp_refunds(psp, order["psp_reference"]) == [(3000, "succeeded"), (7000, "succeeded")]
    assert order_view(api, payment["payment_id"])["amount_refunded"] == 10_000
    more = refund(api, po, 1)
    assert (more.status, more.body["error"]["code"], more.body["error"]["param"]) == (
        422,
        "refund_exceeds_charge",
        "amount",
    )
    # And the seller's wallet and payable are back to 0: the charge and two refund journals
    assert_books(api, seller, 0)
    assert journal_lines(api, po) == sorted(
        [
            ("psp_receivable", "debit", 10_000),
            (f"seller_payable:{seller}", "credit", 10_000),
            (f"seller_payable:{seller}", "debit", 3000),
            ("psp_receivable", "credit", 3000),
            (f"seller_payable:{seller}", "debit", 7000),
            ("psp_receivable", "credit", 7000),
        ]
    )
    assert audit_findings(stack, tmp_path, seller, po) == []


def test_an_over_refund_and_refunds_of_orders_that_cannot_be_refunded_are_refused(
    api: ApiClient, psp: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given a paid order and a declined one
    seller, declined_seller = unique("seller"), unique("seller")
    payment = paid_orders(api, (seller, 5000), (declined_seller, 700, "tok_chargeDeclined"))
    paid, declined = payment["orders"]

    # When more than the charge is refunded, then 422 refund_exceeds_charge, and nothing changed
    over = refund(api, paid["payment_order_id"], 5001)
    assert (over.status, over.body["error"]["code"]) == (422, "refund_exceeds_charge")
    # A declined order: 422 order_not_refundable; an unknown one: 404
    not_refundable = refund(api, declined["payment_order_id"], 100)
    assert (not_refundable.status, not_refundable.body["error"]["code"]) == (422, "order_not_refundable")
    unknown = refund(api, unique("po"), 100)
    assert (unknown.status, unknown.body["error"]["type"]) == (404, "not_found")
    assert api.get("/v1/refunds/rf_doesnotexist").status == 404
    # A missing Idempotency-Key: 400
    no_key = api.request("POST", "/v1/refunds", body={"payment_order_id": paid["payment_order_id"]})
    assert no_key.status == 400
    assert order_view(api, payment["payment_id"])["amount_refunded"] == 0
    assert psp_refunds(psp, paid["psp_reference"]) == []
    assert_books(api, seller, 5000)
    assert audit_findings(stack, tmp_path, seller, declined_seller, paid["payment_order_id"]) == []


def test_concurrent_refunds_cannot_exceed_the_charge(
    api: ApiClient, psp: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given an order of 1000
    seller = unique("seller")
    payment = paid_orders(api, (seller, 1000))
    order = payment["orders"][0]

    # When ten refunds of 300 are requested at once
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: refund(api, order["payment_order_id"], 300), range(10)))

    # Then exactly three are accepted, the others refused, and the three succeed
    accepted = [a.body["refund_id"] for a in answers if a.status == 202]
    refused = [a.body["error"]["code"] for a in answers if a.status == 422]
    assert (len(accepted), refused) == (3, ["refund_exceeds_charge"] * 7)
    assert [wait_for_refund(api, r)["status"] for r in accepted] == ["SUCCEEDED"] * 3
    assert psp_refunds(psp, order["psp_reference"]) == [(300, "succeeded")] * 3
    assert order_view(api, payment["payment_id"])["amount_refunded"] == 900
    assert_books(api, seller, 100)
    assert audit_findings(stack, tmp_path, seller, order["payment_order_id"]) == []


def test_a_refund_that_fails_moves_no_money_and_releases_its_amount(
    api: ApiClient, psp: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given an order whose refunds the PSP fails (tok_refundFail: the charge succeeds)
    seller = unique("seller")
    payment = paid_orders(api, (seller, 2500, "tok_refundFail"))
    order = payment["orders"][0]
    assert order["status"] == "SUCCEEDED"

    # When 1000 is refunded
    accepted = refund(api, order["payment_order_id"], 1000)
    assert accepted.status == 202, accepted.body

    # Then the refund ends FAILED with the PSP's code, the wallet and ledger never moved
    failed = wait_for_refund(api, accepted.body["refund_id"])
    assert (failed["status"], failed["failure_code"]) == ("FAILED", "expired_or_canceled_card")
    assert psp_refunds(psp, order["psp_reference"]) == [(1000, "failed")]
    assert_books(api, seller, 2500)
    assert journal_lines(api, order["payment_order_id"]) == sorted(
        [("psp_receivable", "debit", 2500), (f"seller_payable:{seller}", "credit", 2500)]
    )
    # And its amount was released exactly: the whole charge can be asked for again
    assert order_view(api, payment["payment_id"])["amount_refunded"] == 0
    again = refund(api, order["payment_order_id"])
    assert (again.status, again.body["amount"]) == (202, 2500)
    assert wait_for_refund(api, again.body["refund_id"])["status"] == "FAILED"
    assert_books(api, seller, 2500)
    assert audit_findings(stack, tmp_path, seller, order["payment_order_id"]) == []


def test_a_refund_whose_verdict_webhook_is_lost_is_settled_by_the_sweep(
    api: ApiClient, psp: ApiClient, stack: LocalStack, faults: Any, tmp_path: Path
) -> None:
    # Given an order whose refunds the PSP holds pending then fails, and every webhook lost on the way
    seller = unique("seller")
    payment = paid_orders(api, (seller, 2000, "tok_refundFail"))
    order = payment["orders"][0]
    faults(drop=True)

    # When 1500 is refunded, and the PSP has failed it
    accepted = refund(api, order["payment_order_id"], 1500)
    assert accepted.status == 202, accepted.body
    refund_id = accepted.body["refund_id"]
    deadline = time.monotonic() + 30
    while psp_refunds(psp, order["psp_reference"]) != [(1500, "failed")]:
        assert time.monotonic() < deadline, psp_refunds(psp, order["psp_reference"])
        time.sleep(0.2)

    # Then we still hold it PENDING, its amount reserved: nothing told us
    assert api.get(f"/v1/refunds/{refund_id}").body["status"] == "PENDING"
    assert order_view(api, payment["payment_id"])["amount_refunded"] == 1500

    # When the refund sweep runs (here with no deadline; on its schedule, 30 minutes after the last change)
    assert stack.scheduler is not None
    report = stack.scheduler.trigger("RefundSweepSchedule", event={"resolve_after_seconds": 0})

    # Then it asked the PSP and settled it FAILED: the amount released, no money moved
    assert (report["resolved"], report["errors"]) == ({"FAILED": 1}, 0), report
    failed = api.get(f"/v1/refunds/{refund_id}").body
    assert (failed["status"], failed["failure_code"]) == ("FAILED", "expired_or_canceled_card")
    assert order_view(api, payment["payment_id"])["amount_refunded"] == 0
    assert_books(api, seller, 2000)
    assert journal_lines(api, order["payment_order_id"]) == sorted(
        [("psp_receivable", "debit", 2000), (f"seller_payable:{seller}", "credit", 2000)]
    )

    # And the next sweep has nothing of it left
    again = stack.scheduler.trigger("RefundSweepSchedule", event={"resolve_after_seconds": 0})
    assert again["resolved"] == {}
    assert audit_findings(stack, tmp_path, seller, order["payment_order_id"]) == []


def test_a_refund_with_its_webhooks_duplicated_and_reordered_fails_once(
    api: ApiClient, psp: ApiClient, stack: LocalStack, faults: Any, tmp_path: Path
) -> None:
    # Given refund webhooks delivered twice, and the non-final refund.created held back past refund.failed
    seller = unique("seller")
    payment = paid_orders(api, (seller, 1800, "tok_refundFail"))
    order = payment["orders"][0]
    faults(duplicate=True, reorder=True)

    # When the order is refunded and the PSP fails the refund
    accepted = refund(api, order["payment_order_id"], 800)
    refund_id = accepted.body["refund_id"]
    failed = wait_for_refund(api, refund_id)
    assert (failed["status"], failed["failure_code"]) == ("FAILED", "expired_or_canceled_card")
    # (let the held-back and duplicated deliveries all arrive)
    assert stack.psp_simulator is not None
    sent = [e for e in stack.psp_simulator.webhooks.sent if e["data"]["object"].get("merchant_reference") == refund_id]
    assert sorted(e["type"] for e in sent) == ["refund.created", "refund.failed"]
    time.sleep(stack.psp_simulator.webhooks.reorder_hold + 1.5)

    # And a late, genuine-looking refund.succeeded arrives too
    late = {
        "id": unique("evt"),
        "type": "refund.succeeded",
        "created": int(time.time()),
        "data": {"object": {"id": "re_late", "merchant_reference": refund_id, "status": "succeeded"}},
    }
    body = json.dumps(late).encode()
    assert stack.psp_simulator.webhooks.secret is not None
    header = signature_header(stack.psp_simulator.webhooks.secret, int(time.time()), body)
    answer = api.request("POST", "/v1/webhooks/psp", raw=body, headers={"PSP-Signature": header})
    assert answer.status == 200

    # Then the refund stays FAILED, and no money ever moved
    assert api.get(f"/v1/refunds/{refund_id}").body["status"] == "FAILED"
    assert order_view(api, payment["payment_id"])["amount_refunded"] == 0
    assert_books(api, seller, 1800)
    assert journal_lines(api, order["payment_order_id"]) == sorted(
        [("psp_receivable", "debit", 1800), (f"seller_payable:{seller}", "credit", 1800)]
    )
    assert audit_findings(stack, tmp_path, seller, order["payment_order_id"]) == []


def test_a_refund_the_psp_fails_after_it_succeeded_is_restored_exactly(
    api: ApiClient, psp: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given a refund of 400 that succeeded and was debited
    seller = unique("seller")
    payment = paid_orders(api, (seller, 1000))
    order = payment["orders"][0]
    refund_id = refund(api, order["payment_order_id"], 400).body["refund_id"]
    assert wait_for_refund(api, refund_id)["status"] == "SUCCEEDED"
    assert_books(api, seller, 600)

    # When the PSP fails it afterwards (refund.failed by webhook)
    fail_at_psp(api, psp, refund_id)

    # Then the refund is FAILED, the debit restored exactly (a reversal journal), the amount released
    assert_books(api, seller, 1000)
    assert journal_lines(api, order["payment_order_id"]) == sorted(
        [
            ("psp_receivable", "debit", 1000),
            (f"seller_payable:{seller}", "credit", 1000),
            (f"seller_payable:{seller}", "debit", 400),
            ("psp_receivable", "credit", 400),
            ("psp_receivable", "debit", 400),
            (f"seller_payable:{seller}", "credit", 400),
        ]
    )
    assert order_view(api, payment["payment_id"])["amount_refunded"] == 0
    assert audit_findings(stack, tmp_path, seller, order["payment_order_id"]) == []


def test_an_orphan_charge_is_refunded_automatically(
    api: ApiClient, psp: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given an order we decided FAILED (declined)
    seller = unique("seller")
    payment = paid_orders(api, (seller, 1234, "tok_chargeDeclined"))
    order = payment["orders"][0]
    po = order["payment_order_id"]
    assert order["status"] == "FAILED"
    # And a charge the PSP made for it all the same, which it announces by a signed charge.succeeded
    charge = psp.request(
        "POST",
        "/v1/charges",
        body={"amount": 1234, "currency": "USD", "payment_method": "tok_visa", "merchant_reference": po},
        headers={"Idempotency-Key": unique("late-attempt")},
    ).body
    event = {
        "id": unique("evt"),
        "type": "charge.succeeded",
        "created": int(time.time()),
        "data": {"object": {**charge, "merchant_reference": po}},
    }
    body = json.dumps(event).encode()
    assert stack.psp_simulator is not None and stack.psp_simulator.webhooks.secret is not None
    header = signature_header(stack.psp_simulator.webhooks.secret, int(time.time()), body)
    assert api.request("POST", "/v1/webhooks/psp", raw=body, headers={"PSP-Signature": header}).status == 200

    # Then the orphan charge is refunded in full, with reason orphan_charge, without touching the seller
    refund_id = orphan_refund_id(po)
    deadline = time.monotonic() + 60
    while api.get(f"/v1/refunds/{refund_id}").status == 404:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    done = wait_for_refund(api, refund_id)
    assert {k: done[k] for k in ("status", "reason", "amount", "payment_order_id")} == {
        "status": "SUCCEEDED",
        "reason": "orphan_charge",
        "amount": 1234,
        "payment_order_id": po,
    }
    assert psp_refunds(psp, charge["id"]) == [(1234, "succeeded")]
    assert api.get(f"/v1/payments/{payment['payment_id']}").body["orders"][0]["status"] == "FAILED"
    assert api.get(f"/v1/wallets/{seller}").body == {"seller_id": seller, "balances": {}}
    assert journal_lines(api, po) == []
    # And the API refuses to refund it again: the order did not succeed
    again = refund(api, po, 1)
    assert (again.status, again.body["error"]["code"]) == (422, "order_not_refundable")
    assert audit_findings(stack, tmp_path, seller, po) == []


def test_a_partially_failed_checkout_is_unwound_by_refunding_each_succeeded_order(
    api: ApiClient, psp: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given a checkout in which two orders succeeded and one was declined
    sellers = [unique("seller") for _ in range(3)]
    payment = paid_orders(api, (sellers[0], 1500), (sellers[1], 2500), (sellers[2], 900, "tok_chargeDeclined"))
    assert payment["status"] == "PARTIALLY_FAILED"
    succeeded = [o for o in payment["orders"] if o["status"] == "SUCCEEDED"]

    # When each succeeded order is refunded in full
    refund_ids = [refund(api, o["payment_order_id"]).body["refund_id"] for o in succeeded]

    # Then every refund succeeds, the buyer got everything back, and the sellers hold nothing
    assert [wait_for_refund(api, r)["status"] for r in refund_ids] == ["SUCCEEDED", "SUCCEEDED"]
    for o in succeeded:
        assert psp_refunds(psp, o["psp_reference"]) == [(o["amount"], "succeeded")]
    view = api.get(f"/v1/payments/{payment['payment_id']}").body["orders"]
    assert [o["amount_refunded"] for o in view] == [1500, 2500, 0]
    for seller in sellers[:2]:
        assert_books(api, seller, 0)
    order_ids = [o["payment_order_id"] for o in payment["orders"]]
    assert audit_findings(stack, tmp_path, *sellers, *order_ids) == []


def test_the_largest_amounts_summed_over_several_partial_refunds(
    api: ApiClient, psp: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given an order of the largest USD amount
    seller = unique("seller")
    payment = paid_orders(api, (seller, 99_999_999))
    order = payment["orders"][0]

    # When it is refunded in three parts that sum to it exactly
    parts = [33_333_333, 33_333_333, 33_333_333]
    ids = [refund(api, order["payment_order_id"], part).body["refund_id"] for part in parts]

    # Then each succeeds, nothing is left, and the books are at zero
    assert [wait_for_refund(api, r)["status"] for r in ids] == ["SUCCEEDED"] * 3
    assert refund(api, order["payment_order_id"], 1).status == 422
    assert order_view(api, payment["payment_id"])["amount_refunded"] == 99_999_999
    assert_books(api, seller, 0)
    assert audit_findings(stack, tmp_path, seller, order["payment_order_id"]) == []


def test_a_refund_can_take_the_balance_negative_and_payouts_wait_until_it_is_positive(
    api: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given a seller who was paid 1000 and has 400 of it left after a payout
    seller = unique("seller")
    api.onboard(seller, us_account_body(seller))
    payment = paid_orders(api, (seller, 1000))
    order = payment["orders"][0]
    payout = api.post("/v1/payouts", {"seller_id": seller, "amount": 600, "currency": "USD"})
    assert payout.status == 202, payout.body
    deadline = time.monotonic() + 60
    while api.get(f"/v1/payouts/{payout.body['payout_id']}").body["status"] not in ("PAID", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert_books(api, seller, 400)

    # When the whole order is refunded
    refund_id = refund(api, order["payment_order_id"]).body["refund_id"]
    assert wait_for_refund(api, refund_id)["status"] == "SUCCEEDED"

    # Then the wallet goes negative, the ledger agrees, and any payout is refused
    assert_books(api, seller, -600)
    refused = api.post("/v1/payouts", {"seller_id": seller, "amount": 1, "currency": "USD"})
    assert (refused.status, refused.body["error"]["code"]) == (422, "insufficient_funds")
    # Until new sales bring it above zero
    paid_orders(api, (seller, 700))
    assert_books(api, seller, 100)
    again = api.post("/v1/payouts", {"seller_id": seller, "amount": 100, "currency": "USD"})
    assert again.status == 202, again.body
    deadline = time.monotonic() + 60
    while api.get(f"/v1/payouts/{again.body['payout_id']}").body["status"] not in ("PAID", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert_books(api, seller, 0)
    assert audit_findings(stack, tmp_path, seller, order["payment_order_id"]) == []


def test_refund_request_for_a_checkout_body_is_a_400(api: ApiClient) -> None:
    # A body that is not a refund (unknown fields, a float amount, an unknown reason) is refused up front
    for bad in (
        checkout((unique("seller"), 100)),
        {"payment_order_id": "po_x", "amount": 10.5},
        {"payment_order_id": "po_x", "reason": "because"},
        {"payment_order_id": "po_x", "amount": 0},
    ):
        answer = api.post("/v1/refunds", bad)
        assert (answer.status, answer.body["error"]["type"]) == (400, "invalid_request_error"), bad
