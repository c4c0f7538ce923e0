"""Settlement reconciliation end to end: real charges at the PSP simulator, its settlement file dropped into
the settlement bucket (S3 notification -> SQS -> reconciliation function), the run over the API, the
reports in S3, the review queue and the ledger's settlement postings."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from local_stack.commands.settle import drop, settlement_bucket, simulator_file, wait_for_run
from local_stack.psp.settlement import fee_for
from local_stack.stack import LocalStack
from tests.support.api import ApiClient, checkout, unique

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


def settle(state: dict[str, Any], query: dict[str, Any], *, distributed: bool = False) -> dict[str, Any]:
    run, _ = settle_file(state, query, distributed=distributed)
    return run


def settle_file(
    state: dict[str, Any], query: dict[str, Any], *, distributed: bool = False
) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The run, and the line numbers of each merchant reference in the dropped file."""
    from functions.reconciliation.domain import run_id_for

    name, content = simulator_file(state["psp_url"], state["psp_api_key"], query)
    lines: dict[str, list[int]] = {}
    for number, line in enumerate(content.decode().splitlines(), start=1):
        lines.setdefault(line.split(",")[1] if "," in line else "", []).append(number)
    source = drop(state, name=name, content=content, day="e2e", distributed=distributed)
    run = wait_for_run(state, run_id_for(source), timeout=90)
    assert run is not None, "the reconciliation run did not finish"
    return run, lines


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
    assert run is not None and run["matched"] == 1
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
    assert run is not None
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
