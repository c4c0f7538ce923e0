"""Sellers' payout accounts end to end: the sellers API over HTTP, payouts that need a verified account,
pay the version they were requested against, and never show, store or log the full numbers."""

from __future__ import annotations

from functions.payout_provider.client import payee_id
from local_stack.stack import LocalStack
from tests.e2e.test_payouts import assert_books_agree, fund, wait_for_payout, wallet
from tests.support.api import ApiClient, unique
from tests.support.bank_accounts import (
    CLOSED_US_ACCOUNT,
    IBAN,
    US_ACCOUNT,
    iban_account_body,
    us_account_body,
)


def test_an_account_is_set_and_read_with_its_last_four_only(api: ApiClient) -> None:
    seller = unique("seller")
    assert api.get(f"/v1/sellers/{seller}").status == 404
    put = api.put(f"/v1/sellers/{seller}/payout-account", iban_account_body(seller, iban="DE89 3704 0044 0532 0130 00"))
    assert (put.status, put.body) == (
        200,
        {
            "seller_id": seller,
            "payout_account": {
                "version": 1,
                "country": "DE",
                "currency": "EUR",
                "account_holder": f"{seller} GmbH",
                "last4": "3000",
                "status": "VERIFIED",
            },
        },
    )
    read = api.get(f"/v1/sellers/{seller}")
    assert (read.status, read.body) == (200, put.body)
    assert IBAN not in str(read.body) and "0532013000" not in str(read.body)


def test_a_bad_checksum_is_400_naming_the_field_and_changes_nothing(api: ApiClient) -> None:
    seller = unique("seller")
    api.onboard(seller, us_account_body(seller))
    for body, param in (
        (iban_account_body(seller, iban="DE89370400440532013001"), "iban"),
        ({**us_account_body(seller), "routing_number": "110000001"}, "routing_number"),
        ({**us_account_body(seller), "country": "FR"}, "iban"),
    ):
        refused = api.put(f"/v1/sellers/{seller}/payout-account", body)
        assert (refused.status, refused.body["error"]["param"]) == (400, param), refused.body
    assert api.get(f"/v1/sellers/{seller}").body["payout_account"]["last4"] == "6789"


def test_a_payout_without_a_verified_account_in_its_currency_is_422_and_reserves_nothing(api: ApiClient) -> None:
    seller = unique("seller")
    fund(api, seller, 1_000)
    missing = api.post("/v1/payouts", {"seller_id": seller, "amount": 500, "currency": "USD"})
    assert (missing.status, missing.body["error"]["code"], missing.body["error"]["param"]) == (
        422,
        "payout_account_missing",
        "seller_id",
    )
    api.onboard(seller, iban_account_body(seller))  # an account, but in EUR
    other_currency = api.post("/v1/payouts", {"seller_id": seller, "amount": 500, "currency": "USD"})
    assert (other_currency.status, other_currency.body["error"]["code"]) == (422, "payout_account_missing")
    assert_books_agree(api, seller, available=1_000, reserved=0)


def test_a_change_of_account_never_redirects_a_payout_in_flight(
    stack: LocalStack, api: ApiClient, provider: ApiClient
) -> None:
    # Given a seller paid out to account ...6789
    seller = unique("seller")
    api.onboard(seller, us_account_body(seller))
    fund(api, seller, 5_000)
    first = api.post("/v1/payouts", {"seller_id": seller, "amount": 3_000, "currency": "USD"})
    assert first.status == 202, first.body

    # When the seller changes to an account the bank will close, while that payout is in flight
    assert api.onboard(seller, us_account_body(seller, account_number=CLOSED_US_ACCOUNT))["payout_account"] == {
        "version": 2,
        "country": "US",
        "currency": "USD",
        "account_holder": f"{seller} LLC",
        "last4": "1113",
        "status": "VERIFIED",
    }

    # Then the first payout is paid to the account it was requested against
    paid = wait_for_payout(api, first.body["payout_id"])
    assert (paid["status"], paid["destination_last4"]) == ("PAID", "6789")
    at_provider = provider.get(f"/payouts/v1/payments?reference={paid['payout_id']}").body["data"]
    # to the payee of account version 1 (a new version is a new payee: this payment can never move to it)
    assert [(p["status"], p["payee_id"]) for p in at_provider] == [("paid", payee_id(seller, 1))]
    # And the next payout goes to the new account (which fails, and is compensated)
    second = api.post("/v1/payouts", {"seller_id": seller, "amount": 2_000, "currency": "USD"})
    failed = wait_for_payout(api, second.body["payout_id"])
    assert (failed["status"], failed["failure_code"], failed["destination_last4"]) == (
        "FAILED",
        "account_closed",
        "1113",
    )
    assert wallet(api, seller) == {"available": 2_000, "reserved": 0}
    assert_books_agree(api, seller, available=2_000, reserved=0)

    # And no full number reached the local stack's logs
    assert stack.log_stream is not None
    stack.log_stream.flush()
    with open(stack.log_stream.name) as logs:
        text = logs.read()
    assert US_ACCOUNT not in text and CLOSED_US_ACCOUNT not in text
