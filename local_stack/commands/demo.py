"""`payments demo`: a scripted tour against a running local stack (`payments local`), printing what
happened: a multi-seller checkout with a commission and an order held until fulfilled, a decline, a retry,
the fulfilment that releases the held funds, a payout through the payout provider, a refund, a dispute, and
the day's settlement files (the PSP's and the payout provider's) with their reconciliation reports."""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3

from functions.reconciliation.domain import run_id_for
from functions.reconciliation.models import ObjectRef
from local_stack.commands.demo_dispute import show_dispute
from local_stack.commands.settle import RunNotFinished, drop, load_state, simulator_file, source_of, wait_for_run
from local_stack.psp.simulator import bearer
from local_stack.psp.test_accounts import us_account_body
from local_stack.stack import STATE_FILE


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="a scripted tour against the running local stack")
    demo.add_argument("--state-file", type=Path, default=STATE_FILE, help="the running stack's state file")
    demo.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for each step")
    demo.set_defaults(run=run)


class Tour:
    def __init__(self, state: dict[str, Any], timeout: float) -> None:
        self.state = state
        self.timeout = timeout
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=60), retries=False)
        self.tag = uuid.uuid4().hex[:6]

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, dict[str, str], Any]:
        headers = {"x-api-key": self.state["api_key"], "Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = self.http.request(
            method,
            f"{self.state['api_url']}{path}",
            headers=headers,
            body=json.dumps(body).encode() if body is not None else None,
        )
        return response.status, dict(response.headers), json.loads(response.data or b"null")

    def psp(self, path: str) -> Any:
        response = self.http.request("GET", f"{self.state['psp_url']}{path}", headers=bearer(self.state["psp_api_key"]))
        return json.loads(response.data)

    def until(self, path: str, done: Any) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            _, _, body = self.call("GET", path)
            if done(body) or time.monotonic() > deadline:
                return body
            time.sleep(0.3)

    def seller(self, name: str) -> str:
        return f"{name}_{self.tag}"

    def checkout(
        self, *orders: tuple[str, int, str], fees: dict[str, int] | None = None, held: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """`fees`: the marketplace's commission on a seller's order, by seller name; `held`: the sellers whose
        orders wait for fulfilment."""
        commissions = fees or {}
        return {
            "checkout_id": f"co_{uuid.uuid4().hex[:8]}",
            "buyer_id": f"buyer_{self.tag}",
            "currency": "USD",
            "payment_method": "tok_visa",
            "orders": [
                {
                    "payment_order_id": f"po_{uuid.uuid4().hex[:10]}",
                    "seller_id": self.seller(s),
                    "amount": a,
                    "payment_method": token,
                    "application_fee": commissions.get(s, 0),
                    "hold": "until_fulfilled" if s in held else "none",
                }
                for s, a, token in orders
            ],
        }

    def pay(self, title: str, body: dict[str, Any]) -> dict[str, Any]:
        print(f"\n== {title}")
        key = uuid.uuid4().hex
        status, _, accepted = self.call("POST", "/v1/payments", body, key)
        print(f"POST /v1/payments -> {status} {accepted['status']} amount={accepted['amount']}")
        payment: dict[str, Any] = self.until(
            f"/v1/payments/{accepted['payment_id']}", lambda p: p["status"] != "PROCESSING"
        )
        print(f"payment {payment['payment_id']}: {payment['status']}")
        for order in payment["orders"]:
            charges = self.psp(f"/v1/charges?merchant_reference={order['payment_order_id']}")["data"]
            print(
                f"  {order['seller_id']:<22} {order['amount']:>6} fee {order['application_fee']:>4} "
                f"hold {order['hold']:<15} {order['status']:<9} {order['failure_code'] or '':<15} "
                f"PSP charges: {len(charges)}"
            )
        payment["idempotency_key"] = key
        return payment

    def wallet(self, name: str) -> dict[str, Any]:
        balances: dict[str, Any] = self.call("GET", f"/v1/wallets/{self.seller(name)}")[2]["balances"]
        return balances


def refund_tour(tour: Tour, order: dict[str, Any]) -> None:
    print(f"\n== 5. A refund of part of carol's order ({order['amount']}), then one too many")
    request = {"payment_order_id": order["payment_order_id"], "amount": 1200, "reason": "requested_by_customer"}
    status, _, accepted = tour.call("POST", "/v1/refunds", request, uuid.uuid4().hex)
    print(
        f"POST /v1/refunds -> {status} {accepted['status']} amount={accepted['amount']}, "
        f"of which the commission gives back {accepted['application_fee_refunded']}"
    )
    refund = tour.until(f"/v1/refunds/{accepted['refund_id']}", lambda r: r["status"] in ("SUCCEEDED", "FAILED"))
    psp_refunds = tour.psp(f"/v1/refunds?merchant_reference={refund['refund_id']}")["data"]
    print(
        f"refund {refund['refund_id']}: {refund['status']}; PSP refunds: "
        f"{[(r['amount'], r['status']) for r in psp_refunds]}; carol's wallet now {tour.wallet('carol')}"
    )
    entries = tour.call("GET", f"/v1/ledger/entries?payment_order_id={order['payment_order_id']}")[2]["entries"]
    for entry in entries:
        print(f"  ledger: {entry['direction']:<6} {entry['account']:<30} {entry['amount']:>6}")
    status, _, refused = tour.call(
        "POST", "/v1/refunds", {"payment_order_id": order["payment_order_id"], "amount": 5000}, uuid.uuid4().hex
    )
    print(f"a refund above what is left of the charge -> {status} {refused['error']['code']}")


def run(args: argparse.Namespace) -> int:
    state = load_state(args.state_file)
    tour = Tour(state, args.timeout)

    first = tour.pay(
        "1. A checkout with three sellers; the marketplace takes a commission of 420 on carol's order, and "
        "bob's order waits for fulfilment",
        tour.checkout(
            ("alice", 1099, "tok_visa"),
            ("bob", 2500, "tok_visa"),
            ("carol", 4200, "tok_visa"),
            fees={"carol": 420},
            held=("bob",),
        ),
    )
    print(f"wallets: alice={tour.wallet('alice')} bob={tour.wallet('bob')} carol={tour.wallet('carol')}")
    revenue = tour.call("GET", f"/v1/ledger/entries?payment_order_id={first['orders'][2]['payment_order_id']}")[2]
    fee_lines = [e["amount"] for e in revenue["entries"] if e["account"] == "platform_revenue"]
    print(f"carol is credited 4200 - 420; platform_revenue is credited {fee_lines}")

    tour.pay(
        "2. A decline among successful orders",
        tour.checkout(("alice", 500, "tok_visa"), ("dave", 700, "tok_chargeDeclined")),
    )
    print(f"dave's wallet (declined, nothing credited): {tour.wallet('dave')}")

    print("\n== 3. Retries: a flaky PSP, a lost response, and the client retrying its request")
    body = tour.checkout(("erin", 800, "tok_processing_error"), ("frank", 900, "tok_timeout"))
    payment = tour.pay("   flaky PSP (two 5xx) and a lost response: each charged exactly once", body)
    status, headers, replay = tour.call("POST", "/v1/payments", body, payment["idempotency_key"])
    print(
        f"same request, same Idempotency-Key -> {status}, Idempotent-Replayed: "
        f"{headers.get('Idempotent-Replayed')}, same payment: {replay['payment_id'] == payment['payment_id']}"
    )
    changed = {**body, "buyer_id": "someone_else"}
    status, _, refused = tour.call("POST", "/v1/payments", changed, payment["idempotency_key"])
    print(f"same key, different body -> {status} {refused['error']['type']}")

    print("\n== 4. A payout to bob, once he has set his bank account and his order is fulfilled")
    payout_request = {"seller_id": tour.seller("bob"), "amount": 2000, "currency": "USD"}
    status, _, missing = tour.call("POST", "/v1/payouts", payout_request, uuid.uuid4().hex)
    print(f"a payout before bob has a payout account -> {status} {missing['error']['code']}")
    status, _, seller = tour.call(
        "PUT", f"/v1/sellers/{tour.seller('bob')}/payout-account", us_account_body(tour.seller("bob"))
    )
    account = seller["payout_account"]
    print(
        f"PUT /v1/sellers/{{bob}}/payout-account -> {status} {account['status']}, "
        f"shown as ...{account['last4']} (the full number is sealed with KMS, never shown)"
    )
    status, _, early = tour.call("POST", "/v1/payouts", payout_request, uuid.uuid4().hex)
    print(f"bob's wallet {tour.wallet('bob')}: a payout while it is pending -> {status} {early['error']['code']}")
    held = first["orders"][1]["payment_order_id"]
    status, _, fulfilled = tour.call("POST", f"/v1/payment-orders/{held}/fulfil")
    print(f"POST /v1/payment-orders/{{bob's order}}/fulfil -> {status}, release {fulfilled['release']}")
    released = tour.until(
        f"/v1/wallets/{tour.seller('bob')}", lambda w: w["balances"].get("USD", {}).get("available", 0) >= 2500
    )
    print(f"bob's wallet now {released['balances']}")
    status, _, payout = tour.call("POST", "/v1/payouts", payout_request, uuid.uuid4().hex)
    print(f"POST /v1/payouts -> {status} {payout['status']}")
    payout = tour.until(f"/v1/payouts/{payout['payout_id']}", lambda p: p["status"] in ("PAID", "FAILED"))
    print(
        f"payout {payout['payout_id']}: {payout['status']} to ...{payout['destination_last4']}; "
        f"bob's wallet now {tour.wallet('bob')}"
    )
    status, _, refused = tour.call(
        "POST", "/v1/payouts", {"seller_id": tour.seller("bob"), "amount": 10_000, "currency": "USD"}, uuid.uuid4().hex
    )
    print(f"a payout above the balance -> {status} {refused['error']['code']}")

    refund_tour(tour, first["orders"][2])

    if not show_dispute(tour):
        return 1

    print("\n== 6. The PSP's settlement file for today, and its reconciliation")
    day = datetime.now(UTC).date().isoformat()
    altered = first["orders"][0]["payment_order_id"]
    name, content = simulator_file(
        state["psp_url"], state["psp_api_key"], {"date": [day], "amount": [altered], "extra": ["1"]}
    )
    source = drop(state, name=name, content=content, day=day)
    rows = content.count(b"\n") - 1
    print(
        f"dropped s3://{source.bucket}/{source.key} ({rows} rows; the PSP changed {altered}'s amount "
        "and added a charge we never made)"
    )
    if not _show_run(state, source, args.timeout):
        return 1

    print("\n== 7. The payout provider's settlement file for today: bob's payout")
    name, content = simulator_file(*source_of(state, "payout-provider"), {"date": [day]}, source="payout-provider")
    source = drop(state, name=name, content=content, day=day, source="payout-provider")
    rows = content.count(b"\n") - 1
    print(f"dropped s3://{source.bucket}/{source.key} ({rows} rows)")
    if not _show_run(state, source, args.timeout):
        return 1

    trial = tour.call("GET", "/v1/ledger/trial-balance")[2]
    print(f"\n== Trial balance: {trial['currencies']} balanced={trial['balanced']}")
    return 0


def _show_run(state: dict[str, Any], source: ObjectRef, timeout: float) -> bool:
    """Wait for the file's reconciliation run and print it; False if it did not finish in time."""
    try:
        result = wait_for_run(state, run_id_for(source), timeout)
    except RunNotFinished as late:
        print(f"the reconciliation run did not finish in time ({late})")
        return False
    breaks = {k: v for k, v in result["breaks"].items() if v}
    print(
        f"run {result['run_id']}: {result['status']}, rows={result['rows']} matched={result['matched']} breaks={breaks}"
    )
    print(f"report: s3://{result['report']['bucket']}/{result['report']['key']}")
    return True
