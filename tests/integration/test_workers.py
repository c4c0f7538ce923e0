"""Queue workers against the template's resources in moto: partial batch failures and idempotency."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable

from functions.common.events import OrderCharged
from local_stack.deploy import LocalCloud
from tests.integration.conftest import context, sqs_event


def _charge(order: str, seller: str, amount: int) -> str:
    return OrderCharged(
        payment_id="pay_1",
        payment_order_id=order,
        seller_id=seller,
        amount=amount,
        currency="EUR",
        psp_reference=f"ch_{order}",
    ).model_dump_json()


def test_wallet_credits_once_and_reports_only_the_bad_record(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    use_function_env("functions.wallet.handler.handler")
    wallet = importlib.import_module("functions.wallet.handler")
    wallet._credit_ports.cache_clear()

    # Given a batch with two good records (one a duplicate of the other) and one malformed body
    event = sqs_event(_charge("po_w1", "seller_w", 700), _charge("po_w1", "seller_w", 700), '{"not": "a charge"}')

    # When the wallet worker processes it
    result = wallet.handler(event, context())

    # Then only the malformed record is reported failed, and the seller is credited once
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    balances = wallet._credit_ports().store.balances("seller_w")
    assert {c: (b.available, b.reserved) for c, b in balances.items()} == {"EUR": (700, 0)}


def test_ledger_books_a_charge_once_balanced(cloud: LocalCloud, use_function_env: Callable[[str], None]) -> None:
    use_function_env("functions.ledger.handler.handler")
    ledger = importlib.import_module("functions.ledger.handler")
    ledger._booking_ports.cache_clear()
    assert ledger.handler(sqs_event(_charge("po_l1", "seller_l", 1234)), context()) == {"batchItemFailures": []}
    assert ledger.handler(sqs_event(_charge("po_l1", "seller_l", 1234)), context()) == {"batchItemFailures": []}
    entries = ledger._booking_ports().store.by_payment_order("po_l1")
    assert sorted((e.account, e.direction, e.amount) for e in entries) == [
        ("psp_receivable", "debit", 1234),
        ("seller_payable:seller_l", "credit", 1234),
    ]


def test_unbalanced_posting_is_refused_and_books_nothing(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    use_function_env("functions.ledger.handler.postings_handler")
    ledger = importlib.import_module("functions.ledger.handler")
    ledger._postings_ports.cache_clear()
    unbalanced = {
        "producer": "payouts",
        "kind": "payout_in_transit",
        "business_id": "b1",
        "reference": "b1",
        "currency": "USD",
        "lines": [
            {"account": "seller_payable:a", "direction": "debit", "amount": 10},
            {"account": "payout_in_transit:a", "direction": "credit", "amount": 9},
        ],
    }
    balanced = {
        **unbalanced,
        "business_id": "b2",
        "reference": "b2",
        "lines": [
            {"account": "seller_payable:a", "direction": "debit", "amount": 10},
            {"account": "payout_in_transit:a", "direction": "credit", "amount": 10},
        ],
    }
    result = ledger.postings_handler(sqs_event(json.dumps(unbalanced), json.dumps(balanced)), context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    entries = list(ledger._postings_ports().store.all_entries())
    assert sorted((e.account, e.direction, e.amount) for e in entries) == [
        ("payout_in_transit:a", "credit", 10),
        ("seller_payable:a", "debit", 10),
    ]
