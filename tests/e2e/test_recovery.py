"""Resolving undecided orders: the PSP settled a pending charge but its webhook was lost; the
scheduled recovery job asks the PSP by idempotency key and settles the order - never charging again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from local_stack.stack import LocalStack
from tests.e2e.test_payouts import assert_books_agree
from tests.e2e.test_webhooks import wait_for_order
from tests.support.api import ApiClient, checkout, unique


@pytest.fixture
def webhooks_lost(psp: ApiClient) -> Iterator[None]:
    assert psp.request("POST", "/v1/_simulator/webhooks", body={"drop": True}).status == 200
    yield
    assert psp.request("POST", "/v1/_simulator/webhooks", body={"drop": False}).status == 200


def test_lost_webhook_is_resolved_by_the_recovery_job(
    stack: LocalStack, api: ApiClient, psp: ApiClient, webhooks_lost: None
) -> None:
    # Given a pending order whose settling webhook the PSP never delivers
    seller = unique("seller")
    payment_id = api.post("/v1/payments", checkout((seller, 1234, "tok_pending"))).body["payment_id"]
    order = wait_for_order(api, payment_id, "PENDING")["orders"][0]
    po = order["payment_order_id"]
    deadline = time.monotonic() + 20
    while psp.get(f"/v1/charges?merchant_reference={po}").body["data"][0]["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1)
    assert api.get(f"/v1/payments/{payment_id}").body["orders"][0]["status"] == "PENDING"
    assert stack.scheduler is not None

    # When the scheduled sweep runs (with the deadline already passed for this order)
    report = stack.scheduler.trigger("RecoverySchedule", event={"resolve_after_seconds": 0})

    # Then the order is settled from the PSP's record, credited and booked once, with no new charge
    assert report["examined"] >= 1
    assert report["resolved"].get("SUCCEEDED", 0) >= 1
    payment = api.wait_for_payment(payment_id, timeout=60)
    assert payment["status"] == "SUCCEEDED"
    assert payment["orders"][0]["psp_reference"] is not None
    charges = psp.get(f"/v1/charges?merchant_reference={po}").body["data"]
    assert [c["status"] for c in charges] == ["succeeded"]
    assert_books_agree(api, seller, available=1234)
    # And a second sweep finds nothing left to do for it
    again = stack.scheduler.trigger("RecoverySchedule", event={"resolve_after_seconds": 0})
    assert api.get(f"/v1/payments/{payment_id}").body["status"] == "SUCCEEDED"
    assert again["stuck"] == 0


def test_order_the_psp_never_saw_is_failed_not_charged(
    stack: LocalStack, api: ApiClient, aws: Any, psp: ApiClient
) -> None:
    # Given an order left EXECUTING by a worker that died before reaching the PSP
    assert stack.cloud is not None and stack.scheduler is not None
    table = next(
        r.ref
        for r in stack.cloud.physical.values()
        if "ExecutorTable" in r.logical_id and r.type == "AWS::DynamoDB::Table"
    )
    po = unique("po")
    aws("dynamodb").put_item(
        TableName=table,
        Item={
            "payment_order_id": {"S": po},
            "payment_id": {"S": unique("pay")},
            "seller_id": {"S": unique("seller")},
            "amount": {"N": "100"},
            "currency": {"S": "USD"},
            "status": {"S": "EXECUTING"},
            "attempts": {"N": "1"},
            "open_bucket": {"S": "OPEN"},
            "open_since": {"S": "2020-01-01T00:00:00+00:00"},
        },
    )

    # When the sweep runs with its configured deadline
    stack.scheduler.trigger("RecoverySchedule")

    # Then the order is FAILED (psp_no_charge), off the index, and the PSP still has no charge for it
    item = aws("dynamodb").get_item(TableName=table, Key={"payment_order_id": {"S": po}}, ConsistentRead=True)["Item"]
    assert (item["status"]["S"], item["failure_code"]["S"]) == ("FAILED", "psp_no_charge")
    assert "open_bucket" not in item
    assert psp.get(f"/v1/charges?merchant_reference={po}").body["data"] == []
