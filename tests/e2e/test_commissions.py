"""Commissions end to end through the local stack: an order's application fee is charged with the order,
credited to platform_revenue instead of the seller, given back in proportion by refunds (unless the refund
says refund_application_fee=false), and known to the money auditor.

After every scenario: the seller's wallet available == the ledger's seller_payable, the trial balance is
zero, and the money auditor finds nothing about the scenario's ids."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from local_stack.stack import LocalStack
from tests.support.api import ApiClient, checkout, new_key, unique
from tests.support.refunds import assert_books, audit_findings, fail_at_psp, wait_for_refund

PLATFORM = "platform_revenue"


def fee_checkout(*orders: tuple[str, int, int], payment_method: str = "tok_visa") -> dict[str, Any]:
    """A checkout whose orders are (seller_id, amount, application_fee)."""
    body = checkout(*((seller, amount) for seller, amount, _ in orders), payment_method=payment_method)
    for entry, (_, _, fee) in zip(body["orders"], orders, strict=True):
        entry["application_fee"] = fee
    return body


def paid(api: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    accepted = api.post("/v1/payments", body)
    assert accepted.status == 202, accepted.body
    payment = api.wait_for_payment(accepted.body["payment_id"])
    assert payment["status"] == "SUCCEEDED", payment
    return payment


def journal_lines(api: ApiClient, payment_order_id: str) -> list[tuple[str, str, int]]:
    entries = api.get(f"/v1/ledger/entries?payment_order_id={payment_order_id}").body["entries"]
    return sorted((e["account"], e["direction"], e["amount"]) for e in entries)


def platform_revenue(api: ApiClient, *payment_order_ids: str) -> int:
    """What the platform keeps of these orders' commissions (its account's credits less debits)."""
    wanted = set(payment_order_ids)
    entries = api.get(f"/v1/ledger/entries?account={PLATFORM}").body["entries"]
    return sum(
        e["amount"] if e["direction"] == "credit" else -e["amount"] for e in entries if e["payment_order_id"] in wanted
    )


def refund(api: ApiClient, payment_order_id: str, amount: int | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"payment_order_id": payment_order_id, **extra}
    if amount is not None:
        body["amount"] = amount
    key = new_key()
    for _ in range(5):  # a refund that lost every race on the charge answers 503: the same key again
        accepted = api.post("/v1/refunds", body, idempotency_key=key)
        if accepted.status != 503:
            break
    assert accepted.status == 202, accepted.body
    done = wait_for_refund(api, accepted.body["refund_id"])
    assert done["status"] == "SUCCEEDED", done
    return done


def test_the_seller_is_credited_the_amount_less_the_fee_and_the_platform_the_fee(
    api: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given a checkout of three orders: a commission of 1,500 on 10,000, none on 3,333, and all of 2,000
    sellers = [unique("seller") for _ in range(3)]
    body = fee_checkout((sellers[0], 10_000, 1500), (sellers[1], 3333, 0), (sellers[2], 2000, 2000))

    # When it is paid
    payment = paid(api, body)

    # Then the PSP charged each order's whole amount, the view shows each fee, and each seller got the rest
    orders = payment["orders"]
    assert [(o["amount"], o["application_fee"], o["status"]) for o in orders] == [
        (10_000, 1500, "SUCCEEDED"),
        (3333, 0, "SUCCEEDED"),
        (2000, 2000, "SUCCEEDED"),
    ]
    assert payment["amount"] == 15_333
    assert_books(api, sellers[0], 8500)
    assert_books(api, sellers[1], 3333)
    assert_books(api, sellers[2], 0)
    # And each charge journal splits the charge; a zero share is no line
    po = [o["payment_order_id"] for o in orders]
    assert journal_lines(api, po[0]) == sorted(
        [
            ("psp_receivable", "debit", 10_000),
            (f"seller_payable:{sellers[0]}", "credit", 8500),
            (PLATFORM, "credit", 1500),
        ]
    )
    assert journal_lines(api, po[1]) == sorted(
        [("psp_receivable", "debit", 3333), (f"seller_payable:{sellers[1]}", "credit", 3333)]
    )
    assert journal_lines(api, po[2]) == sorted([("psp_receivable", "debit", 2000), (PLATFORM, "credit", 2000)])
    assert platform_revenue(api, *po) == 3500
    assert audit_findings(stack, tmp_path, *sellers, *po) == []


def test_a_fee_above_the_amount_is_a_400_that_stores_nothing(api: ApiClient) -> None:
    # Given a checkout whose second order's fee is 1 more than its amount
    seller = unique("seller")
    body = fee_checkout((seller, 500, 0), (seller + "_b", 700, 701))
    key = new_key()

    # When it is posted, and bodies with a negative, fractional or text fee
    refused = api.post("/v1/payments", body, idempotency_key=key)
    others = []
    for bad in (-1, 10.5, "100", None):
        other = fee_checkout((seller, 500, 0))
        other["orders"][0]["application_fee"] = bad
        others.append(api.post("/v1/payments", other))

    # Then each is a 400 naming the fee
    assert (refused.status, refused.body["error"]["code"], refused.body["error"]["param"]) == (
        400,
        "parameter_invalid",
        "orders[1].application_fee",
    )
    assert "700" in refused.body["error"]["message"]
    assert [(o.status, o.body["error"]["param"]) for o in others] == [(400, "orders[0].application_fee")] * 4
    # And nothing was stored: the same key and order ids with the fee put right are a new payment
    body["orders"][1]["application_fee"] = 700
    accepted = api.post("/v1/payments", body, idempotency_key=key)
    assert accepted.status == 202, accepted.body
    assert api.wait_for_payment(accepted.body["payment_id"])["status"] == "SUCCEEDED"


def test_refunds_give_back_the_fee_in_proportion_and_the_last_takes_the_rest(
    api: ApiClient, psp: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given an order of 10,000 with a commission of 1,001 (the seller has 8,999)
    seller = unique("seller")
    (order,) = paid(api, fee_checkout((seller, 10_000, 1001)))["orders"]
    po = order["payment_order_id"]
    assert_books(api, seller, 8999)

    # When it is refunded in three pieces: 3,333, 3,333 and the rest (3,334)
    shares = [refund(api, po, 3333), refund(api, po, 3333), refund(api, po)]

    # Then the fee given back is 1,001 x refunded / 10,000 rounded down, cumulatively: 333, 334, then the rest
    assert [(r["amount"], r["application_fee_refunded"]) for r in shares] == [(3333, 333), (3333, 334), (3334, 334)]
    # And the buyer got all 10,000 back at the PSP, the seller gave back 8,999 and the platform 1,001
    refunded = psp.get(f"/v1/refunds?charge={order['psp_reference']}").body["data"]
    assert sorted(r["amount"] for r in refunded) == [3333, 3333, 3334]
    assert_books(api, seller, 0)
    assert platform_revenue(api, po) == 0
    assert sorted(line for line in journal_lines(api, po) if line[0] == PLATFORM) == [
        (PLATFORM, "credit", 1001),
        (PLATFORM, "debit", 333),
        (PLATFORM, "debit", 334),
        (PLATFORM, "debit", 334),
    ]
    assert audit_findings(stack, tmp_path, seller, po) == []


def test_a_refund_that_keeps_the_fee_takes_it_all_from_the_seller(
    api: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given an order of 10,000 with a commission of 1,000 (the seller has 9,000)
    seller = unique("seller")
    (order,) = paid(api, fee_checkout((seller, 10_000, 1000)))["orders"]
    po = order["payment_order_id"]

    # When half is refunded keeping the fee, then the rest giving it back
    kept = refund(api, po, 5000, refund_application_fee=False)
    given = refund(api, po)

    # Then the first took all 5,000 from the seller, the second 4,500 and 500 of the fee: the platform keeps
    # the 500 the first refund did not give back, and the seller's wallet is 500 below zero
    assert [(r["amount"], r["application_fee_refunded"]) for r in (kept, given)] == [(5000, 0), (5000, 500)]
    assert_books(api, seller, -500)
    assert platform_revenue(api, po) == 500
    assert audit_findings(stack, tmp_path, seller, po) == []


def test_concurrent_refunds_of_a_fee_order_give_back_exactly_the_fee(
    api: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given an order of 1,000 with a commission of 333
    seller = unique("seller")
    (order,) = paid(api, fee_checkout((seller, 1000, 333)))["orders"]
    po = order["payment_order_id"]

    # When ten refunds of 100 are requested at once
    with ThreadPoolExecutor(max_workers=10) as pool:
        done = list(pool.map(lambda _: refund(api, po, 100), range(10)))

    # Then all ten succeed, their shares add up to the whole fee, and no share passes its proportion by more
    # than the rounding (each is 33 or 34)
    shares = sorted(r["application_fee_refunded"] for r in done)
    assert (sum(shares), set(shares) <= {33, 34}) == (333, True)
    assert_books(api, seller, 0)
    assert platform_revenue(api, po) == 0
    assert audit_findings(stack, tmp_path, seller, po) == []


def test_a_fee_refund_the_psp_fails_afterwards_restores_both_shares(
    api: ApiClient, psp: ApiClient, stack: LocalStack, tmp_path: Path
) -> None:
    # Given a refund of 400 of an order of 1,000 with a commission of 100: 40 from the platform, 360 from the seller
    seller = unique("seller")
    (order,) = paid(api, fee_checkout((seller, 1000, 100)))["orders"]
    po = order["payment_order_id"]
    first = refund(api, po, 400)
    assert first["application_fee_refunded"] == 40
    assert_books(api, seller, 540)

    # When the PSP fails it afterwards
    fail_at_psp(api, psp, first["refund_id"])

    # Then both parts are restored exactly, and the fee it held is released: a refund of the whole order
    # afterwards gives back the whole fee
    assert_books(api, seller, 900)
    assert platform_revenue(api, po) == 100
    whole = refund(api, po)
    assert (whole["amount"], whole["application_fee_refunded"]) == (1000, 100)
    assert_books(api, seller, 0)
    assert platform_revenue(api, po) == 0
    assert audit_findings(stack, tmp_path, seller, po) == []


def test_a_day_of_commission_orders_and_their_refunds_reconciles_with_no_break(
    api: ApiClient, stack: LocalStack
) -> None:
    # Reconciliation matches what the PSP moved: the whole charge and the whole refund, whatever the split
    from tests.e2e.test_reconciliation import BREAKS_NONE, now, settle_file

    state = {
        "api_url": stack.api_url,
        "api_key": stack.config.api_key,
        "psp_url": stack.psp_url,
        "psp_api_key": stack.config.psp_api_key,
        "aws_endpoint": stack.aws_endpoint,
        "buckets": stack.cloud.names_of("AWS::S3::Bucket"),
    }
    # Given, in one period, an order of 6,000 with a commission of 600 and one taken whole as commission,
    # and a refund of 1,000 of the first (giving back 100 of the fee)
    since = now()
    seller = unique("seller")
    first, whole = paid(api, fee_checkout((seller, 6000, 600), (unique("seller"), 700, 700)))["orders"]
    assert refund(api, first["payment_order_id"], 1000)["application_fee_refunded"] == 100

    # When the PSP's file of that period drops
    run, lines = settle_file(state, {"since": since, "until": now()})

    # Then its three rows (two charges, one refund) match, with no break, and the books stay balanced
    assert run["status"] == "COMPLETED", run
    assert (run["rows"], run["matched"]) == (3, 3)
    assert (run["breaks"], run["temporary_breaks"]) == (BREAKS_NONE, BREAKS_NONE)
    assert len(lines[first["payment_order_id"]]) == 1 and len(lines[whole["payment_order_id"]]) == 1
    assert_books(api, seller, 6000 - 600 - 900)
    assert platform_revenue(api, first["payment_order_id"], whole["payment_order_id"]) == 600 - 100 + 700
