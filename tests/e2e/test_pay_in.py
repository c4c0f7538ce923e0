"""Pay-in end to end through the local stack: checkout -> PSP -> wallet -> double-entry ledger."""

from __future__ import annotations

from typing import Any

from tests.support.api import ApiClient, checkout, unique


def wallet_available(api: ApiClient, seller_id: str, currency: str = "USD") -> int:
    balances = api.get(f"/v1/wallets/{seller_id}").body["balances"]
    return int(balances.get(currency, {}).get("available", 0))


def payable_balance(api: ApiClient, seller_id: str, currency: str = "USD") -> int:
    entries = api.get(f"/v1/ledger/entries?account=seller_payable:{seller_id}").body["entries"]
    return sum(
        e["amount"] if e["direction"] == "credit" else -e["amount"] for e in entries if e["currency"] == currency
    )


def charges_for(psp: ApiClient, payment_order_id: str) -> list[dict[str, Any]]:
    return list(psp.get(f"/v1/charges?merchant_reference={payment_order_id}").body["data"])


def test_multi_seller_checkout_succeeds_and_books_every_order_once(api: ApiClient, psp: ApiClient) -> None:
    # Given three sellers in one checkout
    sellers = [unique("seller") for _ in range(3)]
    body = checkout((sellers[0], 1099), (sellers[1], 2500), (sellers[2], 1))

    # When the checkout is paid
    accepted = api.post("/v1/payments", body)

    # Then it is accepted as PROCESSING with the summed amount
    assert accepted.status == 202, accepted.body
    assert accepted.body["status"] == "PROCESSING"
    assert accepted.body["amount"] == 3600
    payment = api.wait_for_payment(accepted.body["payment_id"])

    # And every order succeeded, was credited and booked
    assert payment["status"] == "SUCCEEDED"
    assert [o["status"] for o in payment["orders"]] == ["SUCCEEDED"] * 3
    assert all(o["wallet_updated"] and o["ledger_updated"] for o in payment["orders"])
    for seller, order in zip(sellers, body["orders"], strict=True):
        assert wallet_available(api, seller) == order["amount"]
        assert payable_balance(api, seller) == order["amount"]
        charges = charges_for(psp, order["payment_order_id"])
        assert len(charges) == 1
        assert charges[0]["amount"] == order["amount"]
        assert charges[0]["status"] == "succeeded"
    trial = api.get("/v1/ledger/trial-balance").body
    assert trial["balanced"] is True
    assert trial["currencies"]["USD"]["debits"] == trial["currencies"]["USD"]["credits"]
