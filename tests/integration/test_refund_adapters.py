"""The refund service's adapters and the wallet's refund worker against the template's tables in moto:
reservations that never exceed the charge, a failure that releases its amount exactly once, and the same
wallet message twice debiting once."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer

from functions.common.refund_events import RefundMoney
from functions.payment.store import DynamoPaymentStore
from functions.psp.models import RefundResult
from functions.refund import domain
from functions.refund.models import ChargeRefunds, Refund, RefundRequest
from functions.refund.store import DynamoChargedOrders, DynamoRefundedAmounts, DynamoRefundStore, refund_key
from functions.refund.verdicts import verdict_of
from local_stack.deploy import LocalCloud
from local_stack.pollers import passes_filters
from tests.integration.conftest import context, sqs_event


def table(cloud: LocalCloud, fragment: str) -> str:
    return next(name for logical_id, name in cloud.names_of("AWS::DynamoDB::Table").items() if fragment in logical_id)


def charge(po: str = "po_1", charged: int = 1000) -> ChargeRefunds:
    return ChargeRefunds(
        payment_order_id=po, payment_id="pay_1", seller_id="s", currency="USD", charged=charged, charge_reference="ch_1"
    )


def refund(refund_id: str, amount: int, po: str = "po_1") -> Refund:
    return Refund(
        refund_id=refund_id,
        payment_order_id=po,
        payment_id="pay_1",
        seller_id="s",
        amount=amount,
        currency="USD",
        reason="duplicate",
        charge_reference="ch_1",
        created_at="2026-01-01T00:00:00.000000Z",
        updated_at="2026-01-01T00:00:00.000000Z",
    )


def test_reservations_stay_within_the_charge_and_a_failure_releases_once(cloud: LocalCloud) -> None:
    store = DynamoRefundStore(table(cloud, "RefundsTable"))
    assert store.reserve(refund("rf_a", 600), charge()) == "stored"
    assert store.reserve(refund("rf_b", 401), charge()) == "exceeds"
    assert store.reserve(refund("rf_a", 600), charge()) == "exists"
    assert store.reserve(refund("rf_c", 400), charge()) == "stored"
    assert store.reserve(refund("rf_d", 1), charge()) == "exceeds"
    assert store.get("rf_b") is None
    found = store.charge_refunds("po_1")
    assert found is not None and (found.charged, found.refunded) == (1000, 1000)

    # A refund that succeeded and then failed: FAILED once, its 600 released once
    assert store.succeed("rf_a", "re_1").status == "SUCCEEDED"
    for _ in range(2):
        failed = store.fail("rf_a", "declined", None)
        assert (failed.status, failed.failure_code, failed.debited, failed.psp_refund_id) == (
            "FAILED",
            "declined",
            True,
            "re_1",
        )
    assert store.charge_refunds("po_1").refunded == 400  # type: ignore[union-attr]
    # Late verdicts are no-ops
    assert store.succeed("rf_a", "re_1").status == "FAILED"
    assert store.record_pending("rf_a", "re_1").status == "FAILED"
    assert DynamoRefundedAmounts(table(cloud, "RefundsTable")).refunded(["po_1", "po_none"]) == {"po_1": 400}


def test_the_api_tells_an_unknown_order_from_one_not_yet_charged(cloud: LocalCloud) -> None:
    orders = DynamoChargedOrders(table(cloud, "ExecutorTable"), table(cloud, "PaymentsTable"))
    store = DynamoRefundStore(table(cloud, "RefundsTable"))
    DynamoPaymentStore(table(cloud, "PaymentsTable")).reserve_order_ids("pay_q", ["po_queued"])
    request = RefundRequest(payment_order_id="po_queued", amount=1)
    with pytest.raises(domain.OrderNotRefundable):
        domain.request_refund(request, caller="c", idempotency_key="k", store=store, orders=orders)
    assert orders.accepted("po_queued") and not orders.accepted("po_never")
    assert orders.order("po_never") is None


def test_the_same_wallet_refund_message_twice_debits_once(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    use_function_env("functions.wallet.refund_handler.handler")
    worker = importlib.import_module("functions.wallet.refund_handler")
    worker._ports.cache_clear()
    ports = worker._ports()
    ports.store.credit_once(seller_id="s_r", currency="USD", amount=500, applied_marker="charge#po_r")
    message = RefundMoney(
        refund_id="rf_" + "a" * 32,
        payment_order_id="po_r",
        payment_id="pay_r",
        seller_id="s_r",
        amount=800,
        currency="USD",
        movement="debit",
    ).model_dump_json()
    assert worker.handler(sqs_event(message, message), context()) == {"batchItemFailures": []}
    balances = ports.store.balances("s_r")
    assert (balances["USD"].available, balances["USD"].reserved) == (-300, 0)


def test_refund_webhook_verdicts() -> None:
    assert verdict_of("refund.failed", {"id": "re_1", "failure_code": "declined", "status": "failed"}) is not None
    failed = verdict_of("refund.failed", {"id": "re_1"})
    assert failed is not None and (failed.status, failed.psp_reference, failed.failure_code) == (
        "failed",
        "re_1",
        None,
    )
    updated = verdict_of("refund.updated", {"status": "pending"})
    assert updated is not None and updated.status == "pending"
    # canceled: the PSP will never pay it, a failure (left PENDING it would hold its amount for ever)
    assert verdict_of("refund.updated", {"status": "canceled"}) == RefundResult("failed", None, "refund_canceled")
    assert verdict_of("refund.updated", {"status": "no_such_status"}) is None


def _stream_record(name: str, item: dict[str, Any], old: dict[str, Any] | None, sequence: int) -> dict[str, Any]:
    """A refunds-table stream record (NEW_AND_OLD_IMAGES) of the item as stored."""
    serialize = TypeSerializer().serialize
    images = {"NewImage": {k: serialize(v) for k, v in item.items()}}
    if old is not None:
        images["OldImage"] = {k: serialize(v) for k, v in old.items()}
    return {
        "eventID": f"e{sequence}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {k: serialize(item[k]) for k in ("pk", "sk")},
            **images,
            "SequenceNumber": str(sequence),
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/refunds/stream/1",
    }


def _drain(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_pending_refunds_are_listed_by_last_change_and_a_resend_is_noted_only_while_unasked(cloud: LocalCloud) -> None:
    store = DynamoRefundStore(table(cloud, "RefundsTable"))
    for n, stamp in (
        (1, "2026-01-01T00:00:03.000000Z"),
        (2, "2026-01-01T00:00:01.000000Z"),
        (3, "2026-01-01T00:00:02.000000Z"),
        (4, "2026-01-01T00:00:09.000000Z"),
    ):
        stored = refund(f"rf_{n}", 100, po=f"po_{n}").model_copy(update={"created_at": stamp, "updated_at": stamp})
        assert store.reserve(stored, charge(f"po_{n}")) == "stored"
    # one decided (no longer PENDING), one the PSP holds pending (its update moves updated_at on)
    store.succeed("rf_3", "re_3")
    held = store.record_pending("rf_2", "re_2")

    # The PENDING ones changed before the cut, oldest first: the decided and the recently changed are left out
    assert [r.refund_id for r in store.pending_since(updated_before="2026-01-01T00:00:05.000000Z")] == ["rf_1"]
    everything = [r.refund_id for r in store.pending_since(updated_before="9999")]
    assert everything == ["rf_1", "rf_4", "rf_2"]  # rf_2's last change is now

    # A re-send is noted on a refund the PSP was never asked about, and on nothing else
    noted = store.mark_sent_again("rf_1")
    assert (noted.status, noted.psp_status) == ("PENDING", None) and noted.updated_at > "2026-01-01T00:00:03.000000Z"
    assert store.mark_sent_again("rf_2") == held
    assert store.mark_sent_again("rf_3").status == "SUCCEEDED"


def test_the_refunds_stream_hands_a_new_refund_to_the_executor_and_a_debited_one_to_the_wallet(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    handler_path = "functions.refund.handler.dispatch_handler"
    use_function_env(handler_path)
    dispatcher = importlib.import_module("functions.refund.handler")
    dispatcher._dispatcher.cache_clear()
    name = table(cloud, "RefundsTable")
    store = DynamoRefundStore(name)
    assert store.reserve(refund("rf_s", 250), charge()) == "stored"

    def item() -> dict[str, Any]:
        return dict(boto3.resource("dynamodb").Table(name).get_item(Key=refund_key("rf_s"))["Item"])

    inserted = item()
    pending = store.record_pending("rf_s", "re_s")
    pending_item = item()
    store.succeed("rf_s", "re_s")
    succeeded_item = item()
    store.fail("rf_s", "declined", None)
    failed_item = item()
    records = [
        _stream_record("INSERT", inserted, None, 1),
        _stream_record("MODIFY", pending_item, inserted, 2),
        _stream_record("MODIFY", succeeded_item, pending_item, 3),
        _stream_record("MODIFY", failed_item, succeeded_item, 4),
    ]
    assert pending.psp_status == "pending"

    # The template's filter lets through the INSERT and the debited refund's changes, not the PENDING one
    (mapping,) = [m for m in cloud.event_sources if cloud.functions[m.function].handler == handler_path]
    passed = [r for r in records if passes_filters(r, mapping.filter_patterns)]
    assert [r["eventID"] for r in passed] == ["e1", "e3", "e4"]

    # When the dispatcher takes them (and the same batch again: a stream redelivers)
    for _ in range(2):
        assert dispatcher.dispatch_handler({"Records": passed}, context()) == {"batchItemFailures": []}

    # Then the executor gets the new refund, and the wallet the debit, then the debit and the restore
    settings = importlib.import_module("functions.refund.settings").RefundDispatcherSettings.from_env()
    executes = _drain(settings.refund_queue_url)
    assert executes == [{"refund_id": "rf_s", "payment_order_id": "po_1"}] * 2
    moves = [(m["movement"], m["refund_id"], m["amount"]) for m in _drain(settings.wallet_refunds_queue_url)]
    assert moves == [("debit", "rf_s", 250), ("debit", "rf_s", 250), ("restore", "rf_s", 250)] * 2


def _put_raw(table_name: str, item: dict[str, Any]) -> None:
    serialize = TypeSerializer().serialize
    boto3.client("dynamodb").put_item(TableName=table_name, Item={k: serialize(v) for k, v in item.items()})


def test_a_refund_stored_before_commissions_that_fails_afterwards_leaves_the_fee_totals_alone(
    cloud: LocalCloud,
) -> None:
    # Given a charge item and a PENDING refund of 600 as they were stored before orders had a fee
    refunds = table(cloud, "RefundsTable")
    _put_raw(
        refunds,
        {"pk": "CHARGE#po_old", "sk": "REFUNDS", **charge("po_old").model_dump(exclude={"refunded"})}
        | {"refunded": 600},
    )
    stored = refund("rf_old", 600, po="po_old").model_dump(
        exclude={"refund_application_fee", "application_fee_refunded"}
    )
    _put_raw(refunds, {**refund_key("rf_old"), "entity": "refund", **stored})
    store = DynamoRefundStore(refunds)

    # When the PSP fails it after the deploy
    assert store.fail("rf_old", "declined", None).status == "FAILED"

    # Then only its amount is released: the fee totals were never added to, and are not taken from
    released = store.charge_refunds("po_old")
    assert released is not None
    assert (released.refunded, released.fee_basis, released.fee_refunded) == (0, 0, 0)


def test_a_fee_share_computed_from_totals_that_moved_is_refused_and_computed_again(cloud: LocalCloud) -> None:
    # Given an order of 1,000 with a commission of 333, read once by two refunds of 500
    store = DynamoRefundStore(table(cloud, "RefundsTable"))
    read = charge("po_fee").model_copy(update={"application_fee": 333})

    def fee_refund(refund_id: str, seen: ChargeRefunds) -> Refund:
        return refund(refund_id, 500, po="po_fee").model_copy(
            update={"refund_application_fee": True, "application_fee_refunded": seen.fee_share(500)}
        )

    # When the first stores its share (166) and the second tries with the same, now stale, totals
    assert store.reserve(fee_refund("rf_f1", read), read) == "stored"
    assert store.reserve(fee_refund("rf_f2", read), read) == "exceeds"

    # Then the second, from the totals read again, takes the rest of the fee (167): 333 in all
    again = store.charge_refunds("po_fee")
    assert again is not None and (again.fee_basis, again.fee_refunded) == (500, 166)
    assert store.reserve(fee_refund("rf_f2", again), again) == "stored"
    settled = store.charge_refunds("po_fee")
    assert settled is not None and (settled.refunded, settled.fee_basis, settled.fee_refunded) == (1000, 1000, 333)
    # And a failed one gives back exactly its amount and share
    store.fail("rf_f1", "declined", None)
    released = store.charge_refunds("po_fee")
    assert released is not None and (released.refunded, released.fee_basis, released.fee_refunded) == (500, 500, 167)
