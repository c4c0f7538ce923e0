"""Settlement reconciliation end to end: real charges at the PSP simulator, its settlement file dropped into
the settlement bucket (S3 notification -> SQS -> reconciliation function), the run over the API, the
reports in S3, the review queue and the ledger's settlement postings."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from local_stack.commands.settle import drop, settlement_bucket, simulator_file, wait_for_run
from local_stack.psp.settlement import fee_for
from local_stack.stack import LocalStack
from tests.support.api import ApiClient, checkout, unique
from tests.support.bank_accounts import us_account_body, us_bank_account

BREAKS_NONE = dict.fromkeys(
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


@pytest.fixture(scope="module")
def state(stack: LocalStack) -> dict[str, Any]:
    assert stack.cloud is not None
    return {
        "api_url": stack.api_url,
        "api_key": stack.config.api_key,
        "psp_url": stack.psp_url,
        "psp_api_key": stack.config.psp_api_key,
        "payout_provider_api_key": stack.config.payout_provider_api_key,
        "aws_endpoint": stack.aws_endpoint,
        "buckets": stack.cloud.names_of("AWS::S3::Bucket"),
    }


def now() -> str:
    return datetime.now(UTC).isoformat()


def pay(api: ApiClient, *amounts: int) -> list[str]:
    """A checkout with one order per amount; returns the order ids once all SUCCEEDED."""
    body = checkout(*((unique("seller"), amount) for amount in amounts))
    accepted = api.post("/v1/payments", body)
    assert accepted.status == 202, accepted.body
    payment = api.wait_for_payment(accepted.body["payment_id"])
    assert [o["status"] for o in payment["orders"]] == ["SUCCEEDED"] * len(amounts)
    return [o["payment_order_id"] for o in body["orders"]]


def settle(
    state: dict[str, Any], query: dict[str, Any], *, distributed: bool = False, source: str = "psp"
) -> dict[str, Any]:
    run, _ = settle_file(state, query, distributed=distributed, source=source)
    return run


def settle_file(
    state: dict[str, Any], query: dict[str, Any], *, distributed: bool = False, source: str = "psp"
) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The run, and the line numbers of each merchant reference in the dropped file (the PSP's, or the payout
    provider's)."""
    from functions.reconciliation.domain import run_id_for

    key = state["psp_api_key"] if source == "psp" else state["payout_provider_api_key"]
    name, content = simulator_file(state["psp_url"], key, query, source=source)
    lines: dict[str, list[int]] = {}
    for number, line in enumerate(content.decode().splitlines(), start=1):
        lines.setdefault(line.split(",")[1] if "," in line else "", []).append(number)
    # The PSP's file under a folder that is no day (it must not settle the day's MISSING record); the provider's
    # under today's, the only place its sender is read from (settlements/<day>/payout-provider/)
    day = "e2e" if source == "psp" else datetime.now(UTC).date().isoformat()
    dropped = drop(state, name=name, content=content, day=day, distributed=distributed, source=source)
    return wait_for_run(state, run_id_for(dropped), timeout=90), lines


def settlement_books(api: ApiClient, run_id: str, *, journals: int, timeout: float = 30) -> tuple[int, dict[str, int]]:
    """The run's settlement journals in the ledger, once `journals` of them are in (or the timeout): how
    many, and each account's balance over them (debits positive)."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [
            e
            for account in ("bank_cash", "psp_fee_expense", "psp_receivable")
            for e in api.get(f"/v1/ledger/entries?account={account}").body["entries"]
            if e["reference"] == run_id
        ]
        found = len({e["journal_id"] for e in entries})
        if found >= journals or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    balances: dict[str, int] = {}
    for e in entries:
        balances[e["account"]] = balances.get(e["account"], 0) + (
            e["amount"] if e["direction"] == "debit" else -e["amount"]
        )
    return found, balances


def cleared(*amounts: int) -> dict[str, int]:
    """The balances a settlement of these USD charges books: net into the bank, the PSP's fees as
    expense, the receivable cleared."""
    fees = sum(fee_for(amount, "USD") for amount in amounts)
    return {"bank_cash": sum(amounts) - fees, "psp_fee_expense": fees, "psp_receivable": -sum(amounts)}


def review_items(aws: Any, state: dict[str, Any], run_id: str) -> list[dict[str, Any]]:
    sqs = aws("sqs")
    url = next(u for u in sqs.list_queues()["QueueUrls"] if "SettlementReviewQueue" in u and "Dlq" not in u)
    items: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return [i for i in items if i["run_id"] == run_id]
        for message in messages:
            items.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_every_break_class_is_reported_with_line_numbers_and_matched_rows_are_booked(
    api: ApiClient, aws: Any, state: dict[str, Any]
) -> None:
    # Given six charged orders, and a seventh charged just before the file's cut-off. The order the file
    # leaves out is decided between the file's first row (o1's) and its last: decided outside that span, it
    # would be no break or a temporary one, and concurrent orders of one checkout finish in any order
    since = now()
    (_o1,) = pay(api, 1000)
    (o2,) = pay(api, 2000)
    o3, o4, o5, _o6 = pay(api, 3000, 4000, 5000, 6000)
    (o7,) = pay(api, 7000)
    until = now()

    # When the PSP's file for that period drops, with one difference of each kind
    run, lines = settle_file(
        state,
        {
            "since": since,
            "until": until,
            "missing": o2,
            "amount": o3,
            "currency": o4,
            "duplicate": o5,
            "late": o7,
            "extra": 1,
            "malformed": 1,
        },
    )

    # Then the run counts every row and every break, once
    assert run["status"] == "COMPLETED", run
    assert run["rows"] == 8  # o1 o3 o4 o5 o5' o6, one extra row, one malformed line
    assert run["matched"] == 3  # o1, o5 (first row), o6
    assert run["breaks"] == {
        **BREAKS_NONE,
        "missing_internal": 1,
        "missing_external": 1,
        "amount_mismatch": 1,
        "currency_mismatch": 1,
        "duplicate_row": 1,
        "malformed_row": 1,
    }
    # And the order charged after the file's last row is a temporary break, not one for a person
    assert run["temporary_breaks"] == {**BREAKS_NONE, "missing_external": 1}

    # And the reports are in the bucket: the summary and one CSV line per break, with line numbers
    s3 = aws("s3")
    bucket = settlement_bucket(state)
    summary = json.loads(s3.get_object(Bucket=bucket, Key=run["report"]["key"])["Body"].read())
    assert (summary["run_id"], summary["matched"]) == (run["run_id"], 3)
    rows = list(
        csv.DictReader(
            io.StringIO(s3.get_object(Bucket=bucket, Key=run["breaks_report"]["key"])["Body"].read().decode())
        )
    )
    by_class = {(r["class"], r["merchant_reference"]): r for r in rows}
    assert len(rows) == 7
    assert by_class[("amount_mismatch", o3)]["line"] == str(lines[o3][0])
    assert by_class[("currency_mismatch", o4)]["line"] == str(lines[o4][0])
    first, second_row = lines[o5]
    assert second_row == first + 1
    assert (by_class[("duplicate_row", o5)]["line"], by_class[("duplicate_row", o5)]["detail"]) == (
        str(second_row),
        f"line {first}",
    )
    assert by_class[("missing_external", o2)]["line"] == ""
    assert by_class[("missing_external", o7)]["temporary"] == "true"
    assert [r["line"] for r in rows if r["class"] == "malformed_row"] == ["9"]

    # And the six permanent breaks went to the review queue
    review = review_items(aws, state, run["run_id"])
    assert sorted(i["break_class"] for i in review) == sorted(
        [
            "missing_internal",
            "missing_external",
            "amount_mismatch",
            "currency_mismatch",
            "duplicate_row",
            "malformed_row",
        ]
    )

    # And the matched rows (o1, o5, o6), and only they, cleared their receivable: one settlement journal
    # for the file's one chunk
    assert settlement_books(api, run["run_id"], journals=1) == (1, cleared(1000, 5000, 6000))
    assert (run["settled_amounts"], run["fees"]) == (
        {"USD": 12000},
        {"USD": sum(fee_for(a, "USD") for a in (1000, 5000, 6000))},
    )
    assert api.get("/v1/ledger/trial-balance").body["balanced"] is True

    # When the next file arrives, carrying the late charge and a new one
    pay(api, 1500)
    second = settle(state, {"since": until, "until": now()})

    # Then the temporary break closes and both rows match
    assert second["status"] == "COMPLETED", second
    assert (second["rows"], second["matched"], second["closed_temporary"]) == (2, 2, 1)
    assert second["breaks"] == BREAKS_NONE
    assert second["temporary_breaks"] == BREAKS_NONE
    assert settlement_books(api, second["run_id"], journals=1) == (1, cleared(7000, 1500))

    # And the runs API lists both, newest first
    listed = api.get("/v1/reconciliations?limit=100").body["runs"]
    ids = [r["run_id"] for r in listed]
    assert ids.index(second["run_id"]) < ids.index(run["run_id"])


def test_the_same_file_delivered_twice_is_one_run_and_one_set_of_postings(
    api: ApiClient, aws: Any, state: dict[str, Any]
) -> None:
    # Given a file reconciled once
    since = now()
    pay(api, 2500)
    name, content = simulator_file(state["psp_url"], state["psp_api_key"], {"since": since, "until": now()})
    from functions.reconciliation.domain import run_id_for

    first = drop(state, name=name, content=content, day="e2e-twice")
    run = wait_for_run(state, run_id_for(first), timeout=60)
    assert run["matched"] == 1
    assert settlement_books(api, run["run_id"], journals=1) == (1, cleared(2500))

    # When the same file is dropped again (a new object version with the same content)
    again = drop(state, name=name, content=content, day="e2e-twice")
    assert again.version != first.version and again.etag == first.etag
    time.sleep(3)  # the notification is delivered and handled

    # Then it maps to the same run, unchanged, and nothing is booked twice
    assert run_id_for(again) == run["run_id"]
    assert api.get(f"/v1/reconciliations/{run['run_id']}").body == run
    runs = [r for r in api.get("/v1/reconciliations?limit=100").body["runs"] if r["source"]["key"] == first.key]
    assert len(runs) == 1
    assert settlement_books(api, run["run_id"], journals=2, timeout=2) == (1, cleared(2500))


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "the header is not"),
        (b"id,amount\n1,2\n", "the header is not the settlement file header"),
    ],
    ids=["empty", "binary", "wrong-header"],
)
def test_a_file_that_is_not_a_settlement_file_is_a_failed_run_with_a_clear_error(
    api: ApiClient, state: dict[str, Any], content: bytes, error: str
) -> None:
    from functions.reconciliation.domain import run_id_for

    source = drop(state, name=f"{unique('bad')}.csv", content=content, day="e2e-bad")
    run = wait_for_run(state, run_id_for(source), timeout=60)
    assert run["status"] == "FAILED"
    assert error in run["error"]
    assert (run["rows"], run["matched"]) == (0, 0)


def test_a_large_file_runs_through_the_distributed_map(api: ApiClient, state: dict[str, Any]) -> None:
    # Given three charged orders
    since = now()
    _q1, q2, _q3 = pay(api, 1100, 2200, 3300)

    # When their file drops marked for the Distributed Map, with one changed amount
    run = settle(state, {"since": since, "until": now(), "amount": q2, "malformed": 0}, distributed=True)

    # Then the state machine's row workers and the finaliser produce the same run as the stream path
    assert run["status"] == "COMPLETED", run
    assert run["mode"] == "distributed"
    assert (run["rows"], run["matched"]) == (3, 2)
    assert run["breaks"] == {**BREAKS_NONE, "amount_mismatch": 1}
    # And each matched row is a journal of its own (the row workers' batches are made up by SQS)
    assert settlement_books(api, run["run_id"], journals=2) == (2, cleared(1100, 3300))


# --- every row type, the closing balance, a missing day ------------------------------------------------


def pay_sellers(api: ApiClient, amounts: dict[str, int]) -> list[str]:
    """One checkout paying each seller its amount; returns the order ids once all SUCCEEDED."""
    body = checkout(*amounts.items())
    accepted = api.post("/v1/payments", body)
    assert accepted.status == 202, accepted.body
    payment = api.wait_for_payment(accepted.body["payment_id"])
    assert [o["status"] for o in payment["orders"]] == ["SUCCEEDED"] * len(amounts)
    return [o["payment_order_id"] for o in body["orders"]]


def paid_payout(api: ApiClient, seller: str, amount: int, *, timeout: float = 60) -> str:
    api.onboard(seller, us_account_body(seller))
    accepted = api.post("/v1/payouts", {"seller_id": seller, "amount": amount, "currency": "USD"})
    assert accepted.status == 202, accepted.body
    payout_id = str(accepted.body["payout_id"])
    deadline = time.monotonic() + timeout
    while (status := api.get(f"/v1/payouts/{payout_id}").body["status"]) != "PAID":
        assert status != "FAILED" and time.monotonic() < deadline, status
        time.sleep(0.3)
    return payout_id


def balance_of(api: ApiClient, account: str, belongs: Any) -> int:
    """The balance (debits positive) of `account` over the entries `belongs` picks."""
    entries = api.get(f"/v1/ledger/entries?account={account}").body["entries"]
    return sum((e["amount"] if e["direction"] == "debit" else -e["amount"]) for e in entries if belongs(e))


def test_a_day_of_charges_and_payouts_reconciles_with_no_break_and_clears_the_receivable(
    api: ApiClient, state: dict[str, Any]
) -> None:
    # Given two sellers paid, and one of them paid out part of it (the payout provider pays the payout)
    since = now()
    seller_a, seller_b = unique("seller"), unique("seller")
    orders = pay_sellers(api, {seller_a: 5000, seller_b: 2000})
    payout_id = paid_payout(api, seller_a, 3000)

    # When the PSP's file and the payout provider's file of that period drop
    run = settle(state, {"since": since, "until": now()})
    payouts = settle(state, {"since": since, "until": now()}, source="payout-provider")

    # Then both charges match in the PSP's, the payout in the provider's, with no break at all (neither file
    # is blamed for the other's records)
    for settled, rows in ((run, 2), (payouts, 1)):
        assert settled["status"] == "COMPLETED", settled
        assert (settled["rows"], settled["matched"]) == (rows, rows)
        assert (settled["breaks"], settled["temporary_breaks"]) == (BREAKS_NONE, BREAKS_NONE)
    assert (run["sender"], payouts["sender"]) == ("psp", "payout_provider")
    assert (run["settled_amounts"], run["paid_out"]) == ({"USD": 7000}, {})
    assert (payouts["settled_amounts"], payouts["paid_out"]) == ({}, {"USD": 3000})

    # And the ledger books money in and money out, the trial balance is zero, and the receivable of
    # what the files settled (the charges, the payout's cash-out, the settlement journals) is cleared
    assert settlement_books(api, run["run_id"], journals=1)[0] == 1
    assert settlement_books(api, payouts["run_id"], journals=1)[0] == 1
    assert api.get("/v1/ledger/trial-balance").body["balanced"] is True
    ours = {*orders, payout_id, run["run_id"], payouts["run_id"]}
    receivable = balance_of(
        api, "psp_receivable", lambda e: e["payment_order_id"] in ours or e.get("reference") in ours
    )
    assert receivable == 0
    assert balance_of(api, f"payout_in_transit:{seller_a}", lambda e: True) == 0
    bank = balance_of(api, "bank_cash", lambda e: e.get("reference") in (run["run_id"], payouts["run_id"]))
    assert bank == 7000 - fee_for(5000, "USD") - fee_for(2000, "USD") - 3000


def test_a_planted_difference_of_each_class_is_found_in_payout_rows(
    api: ApiClient, provider: ApiClient, state: dict[str, Any]
) -> None:
    # Given five sellers paid and paid out, and a payment the payout provider made that we never asked for
    since = now()
    sellers = [unique("seller") for _ in range(5)]
    pay_sellers(api, dict.fromkeys(sellers, 4000))
    # (the payout left out of the file is paid second: a row before it opens the file's span, whose start is
    # its first row's time, and the later rows take the file's cut-off past it, so it is a permanent break,
    # not a temporary one expected in the next file)
    amount, missing, currency, status, duplicate = (paid_payout(api, s, 1000) for s in sellers)
    account = us_bank_account()
    payee = f"stranger{uuid.uuid4().hex}"  # letters and digits, as a provider takes payee ids
    put = provider.request(
        "PUT",
        f"/payouts/v1/payees/{payee}",
        body={
            "name": account.account_holder_name,
            "country": "US",
            "currency": "USD",
            **account.numbers.model_dump(exclude_none=True),
        },
    )
    assert put.status == 200, put.body
    stranger = provider.post(
        "/payouts/v1/payments",
        {"payee_id": payee, "amount": 700, "currency": "USD", "reference": unique("pay_x")},
        idempotency_key=unique("key"),
    )
    assert stranger.status == 200, stranger.body
    time.sleep(2)  # the provider pays it

    # When the provider's file drops with one difference of each class in the payout rows
    run = settle(
        state,
        {
            "since": since,
            "until": now(),
            "amount": amount,
            "currency": currency,
            "status": status,
            "duplicate": duplicate,
            "missing": missing,
        },
        source="payout-provider",
    )

    # Then each is found, on its payout
    assert run["status"] == "COMPLETED", run
    assert run["breaks"] == {
        **BREAKS_NONE,
        "missing_internal": 1,
        "missing_external": 1,
        "amount_mismatch": 1,
        "currency_mismatch": 1,
        "status_mismatch": 1,
        "duplicate_row": 1,
    }
    # rows: the payouts' five less the missing one plus the duplicate, the stranger; matched: the duplicate's
    # first row (the charges are the PSP's file's, and no break of this file)
    assert (run["rows"], run["matched"]) == ((5 - 1 + 1) + 1, 1)
    report = wait_for_report(state, run)
    found = {(r["class"], r["merchant_reference"]) for r in report}
    assert {
        ("amount_mismatch", amount),
        ("currency_mismatch", currency),
        ("status_mismatch", status),
        ("duplicate_row", duplicate),
        ("missing_external", missing),
    } <= found
    assert ("missing_internal", stranger.body["reference"]) in found
    assert api.get("/v1/ledger/trial-balance").body["balanced"] is True


def refunded(api: ApiClient, payment_order_id: str, amount: int, *, timeout: float = 60) -> str:
    accepted = api.post(
        "/v1/refunds", {"payment_order_id": payment_order_id, "amount": amount, "reason": "requested_by_customer"}
    )
    assert accepted.status == 202, accepted.body
    refund_id = str(accepted.body["refund_id"])
    deadline = time.monotonic() + timeout
    while (status := api.get(f"/v1/refunds/{refund_id}").body["status"]) != "SUCCEEDED":
        assert status != "FAILED" and time.monotonic() < deadline, status
        time.sleep(0.3)
    return refund_id


def disputed(api: ApiClient, psp: ApiClient, seller: str, amount: int, outcome: str, *, timeout: float = 60) -> str:
    """A charge its buyer disputes (the simulator opens it by webhook), closed `outcome` at the PSP once we
    hold it OPEN; returns our dispute id once it is closed on our side too."""
    payment = api.wait_for_payment(
        api.post("/v1/payments", checkout((seller, amount, "tok_createDispute"))).body["payment_id"]
    )
    assert payment["status"] == "SUCCEEDED", payment
    order_id = payment["orders"][0]["payment_order_id"]

    def dispute_in(status: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (found := api.get(f"/v1/disputes?payment_order_id={order_id}").body["disputes"]) == [] or found[0][
            "status"
        ] != status:
            assert time.monotonic() < deadline, found
            time.sleep(0.3)
        return dict(found[0])

    opened = dispute_in("OPEN")
    closed = psp.request("POST", f"/v1/disputes/{opened['psp_dispute_id']}/close", body={"outcome": outcome})
    assert closed.status == 200, closed.body
    return str(dispute_in(outcome.upper())["dispute_id"])


def test_a_day_with_every_row_type_reconciles_with_no_break(
    api: ApiClient, psp: ApiClient, state: dict[str, Any]
) -> None:
    # Given, in one period: two charges, a partial refund of one, a payout, and a dispute the seller won
    # (the PSP takes the amount and its fee when it opens, and gives the amount back when it is won)
    since = now()
    seller, buyer_disputes = unique("seller"), unique("seller")
    (order,) = pay_sellers(api, {seller: 6000})
    refund_id = refunded(api, order, 1000)
    payout_id = paid_payout(api, seller, 2000)
    dispute_id = disputed(api, psp, buyer_disputes, 3000, "won")

    # When the PSP's file and the payout provider's file of that period drop
    run, lines = settle_file(state, {"since": since, "until": now()})
    payouts, payout_lines = settle_file(state, {"since": since, "until": now()}, source="payout-provider")

    # Then every row matches: the PSP's two charges, the refund, the dispute and its reversal; the provider's
    # payout
    for settled, rows in ((run, 5), (payouts, 1)):
        assert settled["status"] == "COMPLETED", settled
        assert (settled["rows"], settled["matched"]) == (rows, rows)
        assert (settled["breaks"], settled["temporary_breaks"]) == (BREAKS_NONE, BREAKS_NONE)
    assert (len(lines[refund_id]), len(lines[dispute_id]), len(payout_lines[payout_id])) == (1, 2, 1)
    assert payout_id not in lines
    assert api.get("/v1/ledger/trial-balance").body["balanced"] is True


def test_a_planted_difference_is_found_in_refund_and_dispute_rows(
    api: ApiClient, psp: ApiClient, state: dict[str, Any]
) -> None:
    # Given a dispute lost, then a charge refunded twice, in one period (the dispute left out of the file
    # comes first: the later rows take the file's cut-off past it, so it is a permanent break, not a
    # temporary one expected in the next file)
    since = now()
    dispute_id = disputed(api, psp, unique("seller"), 3000, "lost")
    (order,) = pay_sellers(api, {unique("seller"): 6000})
    first, second = refunded(api, order, 1000), refunded(api, order, 500)

    # When the file drops with the first refund's amount changed, the second's row twice, the dispute's
    # row left out
    run = settle(state, {"since": since, "until": now(), "amount": first, "duplicate": second, "missing": dispute_id})

    # Then each is found, on its record
    assert run["status"] == "COMPLETED", run
    assert run["breaks"] == {**BREAKS_NONE, "amount_mismatch": 1, "duplicate_row": 1, "missing_external": 1}
    # rows: two charges, the first refund, the second twice; matched: the charges and the second's first row
    assert (run["rows"], run["matched"], run["temporary_breaks"]) == (5, 3, BREAKS_NONE)
    found = {(r["class"], r["merchant_reference"]) for r in wait_for_report(state, run)}
    assert {("amount_mismatch", first), ("duplicate_row", second), ("missing_external", dispute_id)} <= found
    assert api.get("/v1/ledger/trial-balance").body["balanced"] is True


def wait_for_report(state: dict[str, Any], run: dict[str, Any]) -> list[dict[str, str]]:
    from local_stack.stack import aws_clients

    body = aws_clients(state["aws_endpoint"])("s3").get_object(
        Bucket=settlement_bucket(state), Key=run["breaks_report"]["key"]
    )["Body"]
    return list(csv.DictReader(io.StringIO(body.read().decode())))


@pytest.mark.parametrize("distributed", [False, True], ids=["stream", "distributed"])
def test_a_file_whose_rows_do_not_sum_to_its_summary_fails_and_books_nothing(
    api: ApiClient, state: dict[str, Any], distributed: bool
) -> None:
    # Given two charges, and their file with its last row lost on the way (the summary still counts it)
    since = now()
    pay(api, 1000, 2000)
    until = now()

    # When it drops
    run = settle(state, {"since": since, "until": until, "truncate": 1}, distributed=distributed)

    # Then the run FAILED: the rows do not sum to the summary, and nothing was booked
    assert (run["status"], run["reason"]) == ("FAILED", "balance_mismatch"), run
    assert run["error"].startswith("USD: rows sum to net ")
    assert settlement_books(api, run["run_id"], journals=1, timeout=2) == (0, {})

    # When the PSP sends the complete file, it reconciles as if it were the first
    complete = settle(state, {"since": since, "until": until}, distributed=distributed)
    assert (complete["status"], complete["matched"], complete["breaks"]) == ("COMPLETED", 2, BREAKS_NONE)


def test_a_missing_day_is_listed_missing_until_its_late_file_arrives(
    api: ApiClient, stack: LocalStack, state: dict[str, Any]
) -> None:
    from functions.reconciliation.domain import run_id_for

    # Given no file for 2031-01-01 by the deadline (06:00 UTC the next day)
    checked_at = datetime(2031, 1, 2, 7, 15, tzinfo=UTC)
    assert stack.scheduler is not None

    # When the hourly check runs
    result = stack.scheduler.trigger("DeadlineSchedule", when=checked_at)

    # Then the day is MISSING, in the runs API, and the check reported it for the alarm
    assert result == {"day": "2031-01-01", "missing": True, "run_id": "missing_2031-01-01"}
    listed = {r["run_id"]: r for r in api.get("/v1/reconciliations?limit=100").body["runs"]}
    missing = listed["missing_2031-01-01"]
    assert (missing["status"], missing["day"], missing["reason"]) == ("MISSING", "2031-01-01", "file_missing")
    assert api.get("/v1/reconciliations/missing_2031-01-01").body["status"] == "MISSING"
    # (the local cloud has no alarms: tests/infra/test_money_alarms.py checks the alarm on the metric, and
    # tests/integration/test_reconciliation_adapters.py that the check publishes it)

    # When the day's (empty) file arrives late
    content = b"psp_reference,merchant_reference,type,amount,currency,fee,net,status,created_at,available_on\n"
    content += b"summary,2031-01-01,summary,0,USD,0,0,closing,2031-01-02T00:00:00.000Z,\n"
    source = drop(state, name="psp-settlement-2031-01-01.csv", content=content, day="2031-01-01")
    run = wait_for_run(state, run_id_for(source), timeout=60)

    # Then its run replaces the MISSING record, and the next check finds the file
    assert run is not None and (run["status"], run["day"], run["rows"]) == ("COMPLETED", "2031-01-01", 0)
    listed = {r["run_id"]: r for r in api.get("/v1/reconciliations?limit=100").body["runs"]}
    assert "missing_2031-01-01" not in listed and run["run_id"] in listed
    assert api.get("/v1/reconciliations/missing_2031-01-01").status == 404
    again = stack.scheduler.trigger("DeadlineSchedule", when=checked_at.replace(hour=8))
    assert again == {"day": "2031-01-01", "missing": False, "run_id": None}
