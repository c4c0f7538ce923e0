"""The largest legal amounts end to end through the local stack: an IDR order of 999,999,999,999 is charged,
credited, booked and paid out (wallet == ledger throughout), one more is refused with 400; and a day's
settlement file whose orders pass the per-order maximum in total reconciles with every row matched."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.reconciliation.domain import run_id_for
from local_stack.commands.settle import drop, simulator_file, wait_for_run
from local_stack.psp.settlement import fee_for
from local_stack.stack import LocalStack
from tests.e2e.test_payouts import wait_for_payout
from tests.support.api import ApiClient, checkout, unique
from tests.support.bank_accounts import iban_account_body

IDR_MAX = 999_999_999_999
USD_MAX = 99_999_999
NO_BREAKS = dict.fromkeys(
    (
        "missing_internal",
        "missing_external",
        "amount_mismatch",
        "currency_mismatch",
        "status_mismatch",
        "duplicate_row",
        "malformed_row",
    ),
    0,
)


def now() -> str:
    return datetime.now(UTC).isoformat()


def pay(api: ApiClient, seller: str, amount: int, currency: str) -> dict[str, Any]:
    accepted = api.post("/v1/payments", checkout((seller, amount), currency=currency))
    assert accepted.status == 202, accepted.body
    assert accepted.body["amount"] == amount
    payment = api.wait_for_payment(accepted.body["payment_id"])
    assert payment["status"] == "SUCCEEDED", payment
    order = payment["orders"][0]
    deadline = time.monotonic() + 30
    while not (order["wallet_updated"] and order["ledger_updated"]) and time.monotonic() < deadline:
        time.sleep(0.2)
        order = api.get(f"/v1/payments/{payment['payment_id']}").body["orders"][0]
    assert (order["amount"], order["wallet_updated"], order["ledger_updated"]) == (amount, True, True)
    return dict(order)


def ledger_balance(api: ApiClient, account: str, currency: str) -> int:
    """Credits minus debits of one account in one currency."""
    entries = api.get(f"/v1/ledger/entries?account={account}").body["entries"]
    return sum(
        e["amount"] if e["direction"] == "credit" else -e["amount"] for e in entries if e["currency"] == currency
    )


def assert_books_agree(api: ApiClient, seller: str, currency: str, *, available: int, reserved: int = 0) -> None:
    """The seller's wallet equals the ledger (payable = available, in transit = reserved), exactly."""
    deadline = time.monotonic() + 60
    while True:
        balances = api.get(f"/v1/wallets/{seller}").body["balances"].get(currency, {"available": 0, "reserved": 0})
        books = (
            (int(balances["available"]), int(balances["reserved"])),
            ledger_balance(api, f"seller_payable:{seller}", currency),
            ledger_balance(api, f"payout_in_transit:{seller}", currency),
        )
        if books == ((available, reserved), available, reserved):
            break
        assert time.monotonic() < deadline, books
        time.sleep(0.2)
    assert api.get("/v1/ledger/trial-balance").body["balanced"] is True


def test_a9_an_idr_order_of_the_largest_amount_is_charged_credited_booked_and_paid_out(
    api: ApiClient, psp: ApiClient
) -> None:
    # Given a seller (paid out in IDR to an IBAN), and an IDR checkout of the largest amount an IDR order may have
    seller = unique("seller")
    api.onboard(seller, iban_account_body(seller, currency="IDR"))

    # When it is paid
    order = pay(api, seller, IDR_MAX, "IDR")

    # Then the PSP charged exactly that, once, and the wallet and the ledger hold it
    charges = psp.get(f"/v1/charges?merchant_reference={order['payment_order_id']}").body["data"]
    assert [(c["amount"], c["currency"], c["status"]) for c in charges] == [(IDR_MAX, "IDR", "succeeded")]
    assert_books_agree(api, seller, "IDR", available=IDR_MAX)

    # And all of it can be paid out
    accepted = api.post("/v1/payouts", {"seller_id": seller, "amount": IDR_MAX, "currency": "IDR"})
    assert accepted.status == 202, accepted.body
    payout = wait_for_payout(api, accepted.body["payout_id"], timeout=180)
    assert (payout["status"], payout["amount"], payout["currency"]) == ("PAID", IDR_MAX, "IDR")
    assert_books_agree(api, seller, "IDR", available=0, reserved=0)
    # (through payout_in_transit: reserved, then cashed out)
    moves = api.get(f"/v1/ledger/entries?account=payout_in_transit:{seller}").body["entries"]
    assert sorted((e["direction"], e["amount"], e["currency"]) for e in moves) == [
        ("credit", IDR_MAX, "IDR"),
        ("debit", IDR_MAX, "IDR"),
    ]


@pytest.mark.parametrize(
    ("currency", "amount"),
    [("IDR", IDR_MAX + 1), ("VND", IDR_MAX + 1), ("USD", USD_MAX + 1), ("EUR", IDR_MAX)],
)
def test_a9_an_amount_above_its_currency_maximum_is_400_and_changes_nothing(
    api: ApiClient, currency: str, amount: int
) -> None:
    seller = unique("seller")
    body = checkout((seller, 100), (unique("seller"), amount), currency=currency)

    refused = api.post("/v1/payments", body)

    assert refused.status == 400, refused.body
    error = refused.body["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "parameter_invalid",
        "orders[1].amount",
    )
    assert str(amount) not in error["message"]
    assert api.get(f"/v1/wallets/{seller}").body["balances"] == {}
    payout = api.post("/v1/payouts", {"seller_id": seller, "amount": amount, "currency": currency})
    assert (payout.status, payout.body["error"]["param"]) == (400, "amount")


def test_a1_a_day_file_whose_orders_pass_the_per_order_maximum_in_total_reconciles_every_row(
    api: ApiClient, stack: LocalStack
) -> None:
    # Given a day of orders whose total passes any one order's maximum: 219,999,999 USD, and the largest IDR
    since = now()
    usd = [pay(api, unique("seller"), amount, "USD") for amount in (60_000_000, 60_000_000, USD_MAX)]
    idr = pay(api, unique("seller"), IDR_MAX, "IDR")
    until = now()
    assert stack.cloud is not None
    state = {
        "api_url": stack.api_url,
        "api_key": stack.config.api_key,
        "aws_endpoint": stack.aws_endpoint,
        "buckets": stack.cloud.names_of("AWS::S3::Bucket"),
    }

    # When the PSP's settlement file for that period is dropped, as `payments settle` does
    name, content = simulator_file(stack.psp_url, stack.config.psp_api_key, {"since": since, "until": until})
    source = drop(state, name=name, content=content, day="e2e-largest")
    run = wait_for_run(state, run_id_for(source), timeout=90)

    # Then the run completes with every row matched and no break
    assert run is not None and run["status"] == "COMPLETED", run
    assert (run["rows"], run["matched"], run["breaks"]) == (4, 4, NO_BREAKS)
    usd_gross = sum(o["amount"] for o in usd)
    assert run["settled_amounts"] == {"USD": usd_gross, "IDR": IDR_MAX}
    usd_fees = sum(fee_for(o["amount"], "USD") for o in usd)
    assert run["fees"] == {"USD": usd_fees, "IDR": fee_for(IDR_MAX, "IDR")}
    assert {o["payment_order_id"] for o in [*usd, idr]} <= set(content.decode().split(","))

    # And the ledger booked the settlement per currency: net to the bank, fees as expense, receivable cleared
    expected = {
        (currency, account): amount
        for currency, gross, fees in (("USD", usd_gross, usd_fees), ("IDR", IDR_MAX, fee_for(IDR_MAX, "IDR")))
        for account, amount in (("bank_cash", gross - fees), ("psp_fee_expense", fees), ("psp_receivable", -gross))
    }
    deadline = time.monotonic() + 30
    while True:
        booked: dict[tuple[str, str], int] = {}
        for account in ("bank_cash", "psp_fee_expense", "psp_receivable"):
            for e in api.get(f"/v1/ledger/entries?account={account}").body["entries"]:
                if e["reference"] == run["run_id"]:
                    key = (e["currency"], account)
                    booked[key] = booked.get(key, 0) + (e["amount"] if e["direction"] == "debit" else -e["amount"])
        if booked == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert booked == expected
    assert api.get("/v1/ledger/trial-balance").body["balanced"] is True
