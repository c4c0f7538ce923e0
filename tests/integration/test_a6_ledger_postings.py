"""Issue 11 A6 through the ledger's booking handlers, on the template's table and queues in moto: the
postings queue books only what each producer may post; anything else, and a journal id that comes
again with other content, is refused (counted, and dead-lettered by the queue's redrive policy)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from local_stack.deploy import LocalCloud
from tests.integration.conftest import context, sqs_event

POSTINGS = "functions.ledger.handler.postings_handler"


def _postings_module(use_function_env: Callable[[str], None]) -> Any:
    use_function_env(POSTINGS)
    module = importlib.import_module("functions.ledger.handler")
    module._postings_ports.cache_clear()
    return module


def _in_transit(payout_id: str, seller: str, amount: int, **changes: Any) -> str:
    return json.dumps(
        {
            "producer": "payouts",
            "kind": "payout_in_transit",
            "business_id": payout_id,
            "reference": payout_id,
            "currency": "USD",
            "lines": [
                {"account": f"seller_payable:{seller}", "direction": "debit", "amount": amount},
                {"account": f"payout_in_transit:{seller}", "direction": "credit", "amount": amount},
            ],
        }
        | changes
    )


def _metrics(out: str, name: str) -> list[Any]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [m[name] for m in lines if name in m]


def _booked(module: Any) -> list[tuple[str, str, int]]:
    return sorted((e.account, e.direction, e.amount) for e in module._postings_ports().store.all_entries())


def test_a6_postings_outside_a_producers_authority_are_refused_and_counted(
    cloud: LocalCloud, use_function_env: Callable[[str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = _postings_module(use_function_env)
    capsys.readouterr()
    forged_charge = json.dumps(
        {
            "producer": "payouts",
            "kind": "charge",
            "business_id": "po_future",
            "currency": "USD",
            "lines": [
                {"account": "psp_receivable", "direction": "debit", "amount": 100},
                {"account": "seller_payable:s_x", "direction": "credit", "amount": 100},
            ],
        }
    )
    split_seller = _in_transit(
        "payout_2",
        "s_a",
        50,
        lines=[
            {"account": "seller_payable:s_a", "direction": "debit", "amount": 50},
            {"account": "payout_in_transit:s_b", "direction": "credit", "amount": 50},
        ],
    )

    # When a batch holds a forged charge, a payout that splits two sellers and one real payout posting
    result = ledger.postings_handler(
        sqs_event(forged_charge, split_seller, _in_transit("payout_1", "s_a", 400)), context()
    )

    # Then only the real one is booked; the others are reported failed and counted
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    assert _booked(ledger) == [("payout_in_transit:s_a", "credit", 400), ("seller_payable:s_a", "debit", 400)]
    assert _metrics(capsys.readouterr().out, "LedgerPostingsRefused") == [[1.0, 1.0]]


def test_a6_a_journal_id_again_with_other_content_is_a_counted_conflict_identical_is_a_repeat(
    cloud: LocalCloud, use_function_env: Callable[[str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = _postings_module(use_function_env)
    assert ledger.postings_handler(sqs_event(_in_transit("payout_1", "s_a", 400)), context()) == {
        "batchItemFailures": []
    }
    capsys.readouterr()

    # When the same payout's journal comes again, once identical and once with another amount
    result = ledger.postings_handler(
        sqs_event(_in_transit("payout_1", "s_a", 400), _in_transit("payout_1", "s_a", 40_000)), context()
    )

    # Then the identical one is an idempotent repeat, the other a conflict: counted, and the first stands
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert _booked(ledger) == [("payout_in_transit:s_a", "credit", 400), ("seller_payable:s_a", "debit", 400)]
    assert _metrics(capsys.readouterr().out, "LedgerJournalConflicts") == [[1.0]]


def test_a6_a_redelivered_charge_with_another_amount_is_a_conflict(
    cloud: LocalCloud, use_function_env: Callable[[str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    use_function_env("functions.ledger.handler.handler")
    ledger = importlib.import_module("functions.ledger.handler")
    ledger._booking_ports.cache_clear()

    def charge(amount: int, payment_order_id: str = "po_1") -> str:
        return json.dumps(
            {
                "payment_id": "pay_1",
                "payment_order_id": payment_order_id,
                "seller_id": "s_a",
                "amount": amount,
                "currency": "USD",
                "psp_reference": "ch_1",
            }
        )

    assert ledger.handler(sqs_event(charge(700)), context()) == {"batchItemFailures": []}
    capsys.readouterr()
    assert ledger.handler(sqs_event(charge(7000), charge(50, "po_2")), context()) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}]
    }
    entries = ledger._booking_ports().store.by_payment_order("po_1")
    assert sorted((e.account, e.amount) for e in entries) == [("psp_receivable", 700), ("seller_payable:s_a", 700)]
    assert _metrics(capsys.readouterr().out, "LedgerJournalConflicts") == [[1.0]]


def _queue_urls(cloud: LocalCloud, logical_prefix: str) -> tuple[str, str]:
    queues = {r.logical_id: r.ref for r in cloud.physical.values() if r.type == "AWS::SQS::Queue"}
    main = next(url for name, url in queues.items() if name.startswith(logical_prefix) and "Dlq" not in name)
    dead = next(url for name, url in queues.items() if name.startswith(logical_prefix) and "Dlq" in name)
    return main, dead


def test_a6_a_refused_posting_ends_in_the_dead_letter_queue_not_retried_forever(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    ledger = _postings_module(use_function_env)
    queue, dead_letters = _queue_urls(cloud, "PayInLedgerPostingsQueue")
    sqs = boto3.client("sqs")
    forged = _in_transit("payout_9", "s_a", 10, kind="settlement")
    sqs.send_message(QueueUrl=queue, MessageBody=forged)

    # When the event source keeps delivering the message while the handler reports it failed
    deliveries = 0
    for _ in range(20):
        received = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not received:
            break
        deliveries += 1
        # (a batch whose every record failed fails the invocation: the event source retries the batch)
        with pytest.raises(BatchProcessingError):
            ledger.postings_handler(sqs_event(received[0]["Body"]), context())

    # Then the queue's redrive policy moved it to the DLQ after a bounded number of deliveries
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    )
    assert deliveries == int(redrive["maxReceiveCount"])
    parked = sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in parked] == [forged]
    assert _booked(ledger) == []
