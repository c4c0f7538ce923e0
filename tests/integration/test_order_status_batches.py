"""The order-status worker folds a batch's events of one payment into one write, against the template's
payments table in moto: each event counts as it would alone, a bad record is still reported alone, and a
payment whose write fails has its records handled, and reported, one by one."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest

from functions.common.events import OrderStatusChanged
from functions.payment.models import OrderView, Payment
from functions.payment.settings import OrderStatusSettings
from functions.payment.store import DynamoPaymentStore
from local_stack.deploy import LocalCloud
from tests.integration.conftest import context, sqs_event
from tests.support.dynamo_calls import dynamodb_operations

HANDLER = "functions.payment.handler.order_status_handler"


@pytest.fixture
def worker(cloud: LocalCloud, use_function_env: Callable[[str], None]) -> Any:
    use_function_env(HANDLER)
    module = importlib.import_module("functions.payment.handler")
    module._order_store.cache_clear()
    return module


@pytest.fixture
def store(worker: Any) -> DynamoPaymentStore:
    return DynamoPaymentStore(OrderStatusSettings.from_env().payments_table)


def _payment(payment_id: str, *orders: str) -> Payment:
    return Payment(
        payment_id=payment_id,
        checkout_id=f"co_{payment_id}",
        buyer_id="b",
        currency="EUR",
        amount=100 * len(orders),
        created_at="2026-12-01T00:00:00+00:00",
        updated_at="2026-12-01T00:00:00+00:00",
        orders=[OrderView(payment_order_id=po, seller_id="s", amount=100, payment_method="tok_visa") for po in orders],
    )


def _event(payment_id: str, order: str, **fields: Any) -> str:
    return OrderStatusChanged(payment_id=payment_id, payment_order_id=order, **fields).model_dump_json()


def test_a_payment_s_events_in_one_batch_are_one_write(worker: Any, store: DynamoPaymentStore) -> None:
    assert store.insert(_payment("pay_a", "po_a1", "po_a2"))
    assert store.insert(_payment("pay_b", "po_b1"))
    event = sqs_event(
        _event("pay_a", "po_a1", status="SUCCEEDED", psp_reference="ch_a1"),
        _event("pay_a", "po_a2", status="SUCCEEDED", psp_reference="ch_a2"),
        '{"not": "an order event"}',
        _event("pay_a", "po_a1", status="SUCCEEDED", wallet_updated=True, ledger_updated=True),
        _event("pay_b", "po_b1", status="FAILED", failure_code="card_declined"),
    )

    with dynamodb_operations() as calls:
        result = worker.order_status_handler(event, context())

    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    a, b = store.get("pay_a"), store.get("pay_b")
    assert a is not None and b is not None
    assert (a.version, [(o.status, o.psp_reference, o.wallet_updated) for o in a.orders]) == (
        1,
        [("SUCCEEDED", "ch_a1", True), ("SUCCEEDED", "ch_a2", False)],
    )
    assert (b.version, b.status, b.orders[0].failure_code) == (1, "FAILED", "card_declined")
    # pay_a: one read and one write for its three events; pay_b: one of each for its one.
    assert _writes(calls) == 2

    # The same batch again (a redelivery) writes nothing.
    with dynamodb_operations() as again:
        assert worker.order_status_handler(event, context()) == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert _writes(again) == 0
    assert store.get("pay_a") == a


def test_a_payment_whose_write_fails_has_each_record_reported(worker: Any, store: DynamoPaymentStore) -> None:
    assert store.insert(_payment("pay_c", "po_c1"))
    event = sqs_event(
        _event("pay_missing", "po_x1", status="SUCCEEDED"),
        _event("pay_missing", "po_x2", status="SUCCEEDED"),
        _event("pay_c", "po_c1", status="SUCCEEDED", psp_reference="ch_c1"),
    )

    result = worker.order_status_handler(event, context())

    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    c = store.get("pay_c")
    assert c is not None and (c.version, c.orders[0].status) == (1, "SUCCEEDED")


def _writes(calls: list[str]) -> int:
    return sum(op in ("PutItem", "UpdateItem", "TransactWriteItems") for op in calls)
