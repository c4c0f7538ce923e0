"""The refund service's adapters and the wallet's refund worker against the template's tables in moto:
reservations that never exceed the charge, a failure that releases its amount exactly once, and the same
wallet message twice debiting once."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest

from functions.common.refund_events import RefundMoney
from functions.payment.store import DynamoPaymentStore
from functions.psp.models import RefundResult
from functions.refund import domain
from functions.refund.models import ChargeRefunds, Refund, RefundRequest
from functions.refund.store import DynamoChargedOrders, DynamoRefundedAmounts, DynamoRefundStore
from functions.refund.verdicts import verdict_of
from local_stack.deploy import LocalCloud
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
