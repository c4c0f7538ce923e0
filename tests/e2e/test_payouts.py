"""Pay-outs end to end: the API, the saga running in moto from the template, the executor, the PSP
simulator's payouts and signed webhooks, compensation, and the daily scheduled run.

Invariant after every scenario, per seller and currency: wallet available == ledger seller_payable,
and wallet reserved == ledger payout_in_transit (reserved funds are the seller's money on its way out:
no longer payable, not yet paid). The trial balance stays balanced."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from functions.payout_provider.client import payee_id
from local_stack.stack import LocalStack
from tests.support.api import ApiClient, checkout, new_key, unique
from tests.support.bank_accounts import CLOSED_US_ACCOUNT, REFUSED_US_ACCOUNT, us_account_body

TERMINAL = ("PAID", "FAILED")


def account_balance(api: ApiClient, account: str, currency: str = "USD") -> int:
    entries = api.get(f"/v1/ledger/entries?account={account}").body["entries"]
    return sum(
        e["amount"] if e["direction"] == "credit" else -e["amount"] for e in entries if e["currency"] == currency
    )


def wallet(api: ApiClient, seller_id: str, currency: str = "USD") -> dict[str, int]:
    balances = api.get(f"/v1/wallets/{seller_id}").body["balances"]
    found = balances.get(currency, {"available": 0, "reserved": 0})
    return {"available": int(found["available"]), "reserved": int(found["reserved"])}


def fund(api: ApiClient, seller_id: str, amount: int) -> None:
    payment = api.wait_for_payment(api.post("/v1/payments", checkout((seller_id, amount))).body["payment_id"])
    assert payment["status"] == "SUCCEEDED"


def wait_for_payout(api: ApiClient, payout_id: str, *, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        result = api.get(f"/v1/payouts/{payout_id}")
        assert result.status == 200, result.body
        if result.body["status"] in TERMINAL or time.monotonic() > deadline:
            return dict(result.body)
        time.sleep(0.2)


def assert_books_agree(api: ApiClient, seller_id: str, *, available: int, reserved: int = 0) -> None:
    """Wallet and ledger agree (the ledger books postings asynchronously: wait for it), exactly."""
    deadline = time.monotonic() + 30
    while True:
        books = (
            wallet(api, seller_id),
            account_balance(api, f"seller_payable:{seller_id}"),
            account_balance(api, f"payout_in_transit:{seller_id}"),
        )
        if books == ({"available": available, "reserved": reserved}, available, reserved):
            break
        assert time.monotonic() < deadline, books
        time.sleep(0.2)
    trial = api.get("/v1/ledger/trial-balance").body
    assert trial["balanced"] is True


def test_payout_is_paid_and_books_the_cash_out(stack: LocalStack, api: ApiClient, provider: ApiClient) -> None:
    # Given a seller with 5000 available
    seller = unique("seller")
    api.onboard(seller, us_account_body(seller))
    fund(api, seller, 5000)

    # When 3000 is paid out
    accepted = api.post("/v1/payouts", {"seller_id": seller, "amount": 3000, "currency": "USD"})

    # Then it is accepted PROCESSING, moves through IN_TRANSIT and ends PAID
    assert accepted.status == 202, accepted.body
    assert accepted.body["status"] == "PROCESSING"
    payout_id = accepted.body["payout_id"]
    seen = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = api.get(f"/v1/payouts/{payout_id}").body["status"]
        seen.add(status)
        if status in TERMINAL:
            break
        time.sleep(0.05)
    payout = api.get(f"/v1/payouts/{payout_id}").body
    assert payout["status"] == "PAID"
    assert "IN_TRANSIT" in seen or payout["psp_reference"]
    assert payout["psp_reference"].startswith("pmt_")
    # And the payout provider made exactly one payment, keyed by the payout id, to the payee of the seller's
    # account version 1, which it knows by its last four digits only
    payouts = provider.get(f"/payouts/v1/payments?reference={payout_id}").body["data"]
    assert [(p["id"], p["amount"], p["status"], p["payee_id"]) for p in payouts] == [
        (payout["psp_reference"], 3000, "paid", payee_id(seller, 1))
    ]
    assert stack.psp_simulator is not None
    payee = stack.psp_simulator.payout_provider.payees.get(payee_id(seller, 1))
    assert payee is not None
    assert (payee.name, payee.country, payee.currency, payee.last4) == (f"{seller} LLC", "US", "USD", "6789")
    assert payout["destination_last4"] == "6789"
    # And the wallet keeps 2000, nothing reserved; the ledger agrees and shows the cash out
    assert_books_agree(api, seller, available=2000, reserved=0)
    cash_out = [
        (e["account"], e["direction"], e["amount"])
        for e in api.get("/v1/ledger/entries?account=psp_receivable").body["entries"]
        if e.get("reference") == payout_id
    ]
    assert cash_out == [("psp_receivable", "credit", 3000)]


def test_payout_above_the_available_balance_is_refused_and_changes_nothing(api: ApiClient, psp: ApiClient) -> None:
    seller = unique("seller")
    api.onboard(seller, us_account_body(seller))
    fund(api, seller, 1000)
    key = new_key()

    refused = api.post("/v1/payouts", {"seller_id": seller, "amount": 1001, "currency": "USD"}, idempotency_key=key)

    assert refused.status == 422
    assert refused.body["error"]["code"] == "insufficient_funds"
    assert refused.body["error"]["param"] == "amount"
    unknown = api.post("/v1/payouts", {"seller_id": unique("seller"), "amount": 1, "currency": "USD"})
    assert (unknown.status, unknown.body["error"]["code"]) == (422, "payout_account_missing")
    assert_books_agree(api, seller, available=1000, reserved=0)


def test_replayed_payout_key_returns_the_same_payout(api: ApiClient, provider: ApiClient) -> None:
    seller = unique("seller")
    api.onboard(seller, us_account_body(seller))
    fund(api, seller, 800)
    key = new_key()
    body = {"seller_id": seller, "amount": 500, "currency": "USD"}

    first = api.post("/v1/payouts", body, idempotency_key=key)
    again = api.post("/v1/payouts", body, idempotency_key=key)
    other = api.post("/v1/payouts", {**body, "amount": 499}, idempotency_key=key)

    assert (first.status, again.status, other.status) == (202, 202, 422)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.body["payout_id"] == first.body["payout_id"]
    assert wait_for_payout(api, first.body["payout_id"])["status"] == "PAID"
    assert len(provider.get(f"/payouts/v1/payments?reference={first.body['payout_id']}").body["data"]) == 1
    assert_books_agree(api, seller, available=300, reserved=0)


def test_concurrent_payouts_cannot_overdraw(api: ApiClient, psp: ApiClient) -> None:
    # Given 1000 available, and two payouts of 700 sent at the same moment
    seller = unique("seller")
    api.onboard(seller, us_account_body(seller))
    fund(api, seller, 1000)
    body = {"seller_id": seller, "amount": 700, "currency": "USD"}

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(lambda _: api.post("/v1/payouts", body), range(2)))

    # Then exactly one is paid; the other is refused - by the API (422) or by the saga's conditional
    # reservation (FAILED, insufficient_funds) - and the balance never went below zero
    outcomes = []
    for response in responses:
        if response.status == 422:
            outcomes.append("refused")
            continue
        assert response.status == 202, response.body
        payout = wait_for_payout(api, response.body["payout_id"])
        outcomes.append(
            "refused" if (payout["status"], payout["failure_code"]) == ("FAILED", "insufficient_funds") else "paid"
        )
    assert sorted(outcomes) == ["paid", "refused"]
    assert_books_agree(api, seller, available=300, reserved=0)


def test_a_payout_the_provider_fails_is_compensated(api: ApiClient, psp: ApiClient) -> None:
    # Given a seller whose bank account the payout provider cannot pay (the payment fails after going in transit)
    seller = unique("seller")
    api.onboard(seller, us_account_body(seller, account_number=CLOSED_US_ACCOUNT))
    fund(api, seller, 2500)

    payout_id = api.post("/v1/payouts", {"seller_id": seller, "amount": 2000, "currency": "USD"}).body["payout_id"]
    payout = wait_for_payout(api, payout_id)

    # Then the payout FAILED with the provider's code; the reservation is released and the ledger nets to zero
    assert (payout["status"], payout["failure_code"]) == ("FAILED", "account_closed")
    assert_books_agree(api, seller, available=2500, reserved=0)
    journal = [
        (e["account"], e["direction"], e["amount"])
        for e in api.get(f"/v1/ledger/entries?account=payout_in_transit:{seller}").body["entries"]
    ]
    assert sorted(journal) == [
        (f"payout_in_transit:{seller}", "credit", 2000),
        (f"payout_in_transit:{seller}", "debit", 2000),
    ]


def test_payout_refused_at_submission_is_compensated(api: ApiClient) -> None:
    seller = unique("seller")
    api.onboard(seller, us_account_body(seller, account_number=REFUSED_US_ACCOUNT))
    fund(api, seller, 900)

    payout = wait_for_payout(
        api, api.post("/v1/payouts", {"seller_id": seller, "amount": 900, "currency": "USD"}).body["payout_id"]
    )

    assert (payout["status"], payout["failure_code"]) == ("FAILED", "invalid_account")
    assert_books_agree(api, seller, available=900, reserved=0)


def test_daily_rule_pays_out_sellers_above_the_threshold(
    stack: LocalStack, api: ApiClient, provider: ApiClient
) -> None:
    # Given one seller above the 100.00 USD threshold and one below
    rich, poor = unique("seller"), unique("seller")
    for seller in (rich, poor):
        api.onboard(seller, us_account_body(seller))
    fund(api, rich, 12_345)
    fund(api, poor, 9_999)
    assert stack.scheduler is not None

    # When the daily rule fires
    result = stack.scheduler.trigger("DailyPayouts")

    # Then the rich seller's whole balance is paid out, the poor seller is untouched
    started = result["payouts"]
    payouts = [api.get(f"/v1/payouts/{p}").body for p in started]
    mine = [p for p in payouts if p["seller_id"] in (rich, poor)]
    assert [(p["seller_id"], p["amount"]) for p in mine] == [(rich, 12_345)]
    assert wait_for_payout(api, mine[0]["payout_id"])["status"] == "PAID"
    assert_books_agree(api, rich, available=0, reserved=0)
    # And firing again the same day, after new sales, starts no second payout for that seller
    fund(api, rich, 20_000)
    again = stack.scheduler.trigger("DailyPayouts")
    assert mine[0]["payout_id"] in again["payouts"]
    assert len(provider.get(f"/payouts/v1/payments?reference={mine[0]['payout_id']}").body["data"]) == 1
    assert_books_agree(api, rich, available=20_000, reserved=0)
    assert_books_agree(api, poor, available=9_999, reserved=0)


def _saga(stack: LocalStack) -> str:
    assert stack.cloud is not None
    return next(arn for logical_id, arn in stack.cloud.state_machines.items() if "PayoutSaga" in logical_id)


def _paid_payout(api: ApiClient, seller: str, amount: int, key: str) -> str:
    accepted = api.post("/v1/payouts", {"seller_id": seller, "amount": amount, "currency": "USD"}, idempotency_key=key)
    assert accepted.status == 202, accepted.body
    assert wait_for_payout(api, accepted.body["payout_id"])["status"] == "PAID"
    return str(accepted.body["payout_id"])


def test_a4_repost_after_the_idempotency_record_expired_pays_out_once(
    stack: LocalStack, api: ApiClient, provider: ApiClient, aws: Any
) -> None:
    # Given a payout of 600 that was paid, whose idempotency record then expired (its TTL is 24 h)
    seller = unique("seller")
    api.onboard(seller, us_account_body(seller))
    fund(api, seller, 1000)
    key = new_key()
    payout_id = _paid_payout(api, seller, 600, key)
    assert stack.cloud is not None
    (idempotency_table,) = [
        r.ref
        for r in stack.cloud.physical.values()
        if r.type == "AWS::DynamoDB::Table" and "IdempotencyTable" in r.logical_id
    ]
    dynamodb = aws("dynamodb")
    records = [
        item
        for item in dynamodb.scan(TableName=idempotency_table)["Items"]
        if payout_id in item.get("data", {}).get("S", "")
    ]
    assert len(records) == 1
    dynamodb.delete_item(TableName=idempotency_table, Key={"id": records[0]["id"]})
    # And the seller has sold again, so the funds for a second payout are there
    fund(api, seller, 1000)

    # When the same request arrives again with the same key
    again = api.post("/v1/payouts", {"seller_id": seller, "amount": 600, "currency": "USD"}, idempotency_key=key)

    # Then the payout is answered as it is: no second reserve, no second saga, no second payout at the PSP
    assert again.status == 202, again.body
    assert (again.body["payout_id"], again.body["status"]) == (payout_id, "PAID")
    executions = aws("stepfunctions").list_executions(stateMachineArn=_saga(stack))["executions"]
    assert [e["name"] for e in executions if e["name"].startswith(payout_id)] == [payout_id]
    assert len(provider.get(f"/payouts/v1/payments?reference={payout_id}").body["data"]) == 1
    assert_books_agree(api, seller, available=1400, reserved=0)


def test_a4_a_second_saga_for_a_closed_payout_reserves_nothing(
    stack: LocalStack, api: ApiClient, provider: ApiClient, aws: Any
) -> None:
    # Given a payout of 600 that was paid, and a seller who has sold again since
    seller = unique("seller")
    api.onboard(seller, us_account_body(seller))
    fund(api, seller, 1000)
    payout_id = _paid_payout(api, seller, 600, new_key())
    fund(api, seller, 1000)

    # When its saga runs a second time (as it can once Step Functions forgets the name, after 90 days)
    sfn = aws("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=_saga(stack),
        name=f"{payout_id}-again",
        input=json.dumps(
            {"payout_id": payout_id, "seller_id": seller, "amount": 600, "currency": "USD", "payout_account_version": 1}
        ),
    )
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the second saga is still running"
        time.sleep(0.2)

    # Then the payout's reservation marker refuses it before it moves any money
    assert described["status"] == "FAILED"
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    assert history[-1]["executionFailedEventDetails"]["error"] == "PayoutAlreadyReserved"
    assert len(provider.get(f"/payouts/v1/payments?reference={payout_id}").body["data"]) == 1
    assert api.get(f"/v1/payouts/{payout_id}").body["status"] == "PAID"
    assert_books_agree(api, seller, available=1400, reserved=0)
