"""Disputes through the template's resources in moto: the webhook receiver hands dispute events to the
disputes queue, the worker moves the seller's wallet with the dispute record in one transaction and posts
the journals, the ledger books them; after every step wallet == ledger bucket by bucket, the trial balance
is zero and the money auditor finds nothing."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import boto3
import pytest

from functions.auditor.handler import AuditPorts, build_ports
from functions.auditor.settings import AuditorSettings
from functions.common.clock import iso, utc_now
from functions.disputes.domain import dispute_id_for
from functions.disputes.models import DisputeNotice, Outcome
from functions.disputes.settings import DisputesSettings
from functions.ledger.domain import posting_journal
from functions.psp.models import ChargeResult
from functions.psp_webhooks.settings import PspWebhookSettings
from functions.wallet.holds import release_posting
from functions.wallet.store import DynamoWalletStore
from local_stack.deploy import LocalCloud
from tests.integration.conftest import api_event, context, sqs_event
from tests.integration.test_auditor import PspCharges, _audit, _succeed_fully
from tests.support.psp_signatures import signature_header

WORKER = "functions.disputes.handler.handler"
POSTINGS = "functions.ledger.handler.postings_handler"
API = "functions.disputes.api.api_handler"
WEBHOOKS = "functions.psp_webhooks.handler.handler"
AUDITOR = "functions.auditor.handler.handler"
SELLER = "seller_a"  # the seller of tests.integration.test_auditor's orders (1500 USD each)


def _notice(outcome: Outcome) -> str:
    return DisputeNotice(
        psp_dispute_id="dp_psp_int",
        payment_order_id="po_disputed",
        seller_id=SELLER,
        amount=1000,
        fee=300,
        currency="USD",
        reason="fraudulent",
        outcome=outcome,
    ).model_dump_json()


def _drain(queue_url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            boto3.client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _book_postings(use_function_env: Callable[[str], None]) -> int:
    use_function_env(POSTINGS)
    ledger = importlib.import_module("functions.ledger.handler")
    ledger._postings_ports.cache_clear()
    bodies = _drain(DisputesSettings.from_env().ledger_postings_queue_url)
    if bodies:
        assert ledger.postings_handler(sqs_event(*bodies), context()) == {"batchItemFailures": []}
    return len(bodies)


def _books(ports: AuditPorts) -> tuple[tuple[int, int], dict[str, int]]:
    wallet = ports.wallets.balance(SELLER, "USD")
    accounts = {
        b.account: b.credit_balance
        for b in ports.balances.all_balances()
        if b.currency == "USD" and (b.account.endswith(SELLER) or b.account == "psp_receivable")
    }
    return (wallet.available, wallet.reserved), accounts


def _api(path: str, query: dict[str, str] | None = None, path_parameters: dict[str, str] | None = None) -> Any:
    handler = importlib.import_module("functions.disputes.api")
    event = api_event("GET", path, path_parameters=path_parameters)
    event["queryStringParameters"] = query
    response = handler.api_handler(event, context())
    return response["statusCode"], json.loads(response["body"])


def test_a_dispute_reserves_then_is_won_exactly_once_with_the_books_agreeing(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    # Given a seller credited and booked 1500 for the disputed order
    use_function_env(AUDITOR)
    settings = AuditorSettings.from_env()
    ports = replace(build_ports(settings), charges=PspCharges({}))  # type: ignore[arg-type]
    _succeed_fully(settings, ports, "po_disputed")
    ports = replace(
        ports, charges=PspCharges({"po_disputed": ChargeResult(status="succeeded", psp_reference="ch_po_disputed")})
    )  # type: ignore[arg-type]
    use_function_env(WORKER)
    worker = importlib.import_module("functions.disputes.handler")
    worker._worker_ports.cache_clear()

    # When the dispute's opening arrives twice in one batch
    assert worker.handler(sqs_event(_notice("open"), _notice("open")), context()) == {"batchItemFailures": []}
    assert _book_postings(use_function_env) == 2

    # Then 1000 + 300 moved from available to reserved once, and the ledger holds it in the dispute reserve
    assert _books(ports) == (
        (200, 1300),
        {"psp_receivable": -1500, f"seller_payable:{SELLER}": 200, f"dispute_reserve:{SELLER}": 1300},
    )
    assert _audit(ports).findings == []

    # And the API shows it, by order and by id; an unknown id is 404
    use_function_env(API)
    importlib.import_module("functions.disputes.api")._reader.cache_clear()
    dispute_id = dispute_id_for("dp_psp_int")
    expected = {
        "dispute_id": dispute_id,
        "payment_order_id": "po_disputed",
        "psp_dispute_id": "dp_psp_int",
        "amount": 1000,
        "fee": 300,
        "currency": "USD",
        "status": "OPEN",
        "reason": "fraudulent",
    }
    assert _api("/v1/disputes", {"payment_order_id": "po_disputed"}) == (200, {"disputes": [expected]})
    assert _api("/v1/disputes", {"payment_order_id": "po_other"}) == (200, {"disputes": []})
    assert _api(f"/v1/disputes/{dispute_id}", path_parameters={"dispute_id": dispute_id}) == (200, expected)
    missing = _api("/v1/disputes/dp_unknown", path_parameters={"dispute_id": "dp_unknown"})
    assert (missing[0], missing[1]["error"]["type"]) == (404, "not_found")
    assert _api("/v1/disputes")[0] == 400

    # When it is won (the notice delivered twice), then the amount is back; the PSP kept the fee
    use_function_env(WORKER)
    assert worker.handler(sqs_event(_notice("won"), _notice("won")), context()) == {"batchItemFailures": []}
    _book_postings(use_function_env)
    assert _books(ports) == (
        (1200, 0),
        {"psp_receivable": -1200, f"seller_payable:{SELLER}": 1200, f"dispute_reserve:{SELLER}": 0},
    )
    assert _audit(ports).findings == []

    # And a later "lost" for the won dispute is refused (to the DLQ) and moves nothing; its batch neighbour,
    # one more "won", is a harmless repeat
    assert worker.handler(sqs_event(_notice("won"), _notice("lost")), context()) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}]
    }
    _book_postings(use_function_env)
    assert _books(ports)[0] == (1200, 0)


def test_the_webhook_receiver_hands_a_signed_dispute_event_for_a_known_order_to_the_disputes_queue(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    # Given an order of ours and the PSP's signing secret
    use_function_env(AUDITOR)
    settings = AuditorSettings.from_env()
    ports = replace(build_ports(settings), charges=PspCharges({}))  # type: ignore[arg-type]
    _succeed_fully(settings, ports, "po_hooked")
    use_function_env(WEBHOOKS)
    webhooks = importlib.import_module("functions.psp_webhooks.handler")
    webhooks.ports.cache_clear()
    wired = PspWebhookSettings.from_env()
    secret = webhooks.ports().secrets.get()[0]
    dispute = {"id": "dp_hooked", "merchant_reference": "po_hooked", "amount": 1500, "fee": 1500, "currency": "USD"}

    def deliver(event_id: str, reference: str) -> Any:
        event = {
            "id": event_id,
            "type": "charge.dispute.created",
            "created": int(time.time()),
            "data": {"object": {**dispute, "merchant_reference": reference, "reason": "fraudulent"}},
        }
        body = json.dumps(event)
        headers = {"PSP-Signature": signature_header(secret, int(time.time()), body.encode())}
        request = api_event("POST", "/v1/webhooks/psp", headers=headers, api_key_id=None)
        request["body"] = body
        response = webhooks.handler(request, context())
        return response["statusCode"], json.loads(response["body"])

    # When the opening arrives twice, and one arrives for an order we never made
    first = deliver("evt_d1", "po_hooked")
    again = deliver("evt_d1", "po_hooked")
    unknown = deliver("evt_d2", "po_never_made")

    # Then one notice for the order's seller is queued; the repeat and the stranger are acknowledged only
    assert (first, again, unknown) == (
        (200, {"received": True, "duplicate": False}),
        (200, {"received": True, "duplicate": True}),
        (200, {"received": True, "duplicate": False}),
    )
    queued = [DisputeNotice.model_validate_json(body) for body in _drain(wired.disputes_queue_url)]
    assert [(n.psp_dispute_id, n.seller_id, n.amount, n.fee, n.outcome) for n in queued] == [
        ("dp_hooked", SELLER, 1500, 1500, "open")
    ]


@pytest.mark.parametrize("released_before_close", [False, True])
def test_a_held_orders_dispute_is_taken_from_its_hold_first_and_given_back_there_while_it_lasts(
    cloud: LocalCloud, use_function_env: Callable[[str], None], released_before_close: bool
) -> None:
    # Given a held order of 1500: all of it pending
    use_function_env(AUDITOR)
    settings = AuditorSettings.from_env()
    ports = replace(build_ports(settings), charges=PspCharges({}))  # type: ignore[arg-type]
    _succeed_fully(settings, ports, "po_disputed", hold="until_fulfilled")
    ports = replace(
        ports, charges=PspCharges({"po_disputed": ChargeResult(status="succeeded", psp_reference="ch_po_disputed")})
    )  # type: ignore[arg-type]
    wallet = DynamoWalletStore(settings.wallet_table)
    use_function_env(WORKER)
    worker = importlib.import_module("functions.disputes.handler")
    worker._worker_ports.cache_clear()

    # When a dispute of 1000 + a fee of 300 opens (delivered twice)
    assert worker.handler(sqs_event(_notice("open"), _notice("open")), context()) == {"batchItemFailures": []}
    _book_postings(use_function_env)

    # Then the 1300 came out of the hold, not out of available
    assert (_books(ports), wallet.balances(SELLER)["USD"].pending) == (
        ((0, 1300), {"psp_receivable": -1500, f"seller_pending:{SELLER}": 200, f"dispute_reserve:{SELLER}": 1300}),
        200,
    )
    hold = wallet.hold(SELLER, "po_disputed")
    assert hold is not None and (hold.status, hold.pending) == ("HELD", 200)
    assert _audit(ports).findings == []

    if released_before_close:  # the marketplace fulfils the order while the dispute is open
        released = wallet.release_once(seller_id=SELLER, payment_order_id="po_disputed", reason="fulfilled")
        posting = release_posting(released) if released is not None else None
        assert posting is not None and ports.journals.append(posting_journal(posting, created_at=iso(utc_now())))

    # When it is won (twice): the amount goes back to the hold while it holds, else to available
    use_function_env(WORKER)
    assert worker.handler(sqs_event(_notice("won"), _notice("won")), context()) == {"batchItemFailures": []}
    _book_postings(use_function_env)
    if released_before_close:
        expected = ((1200, 0), {f"seller_pending:{SELLER}": 0, f"seller_payable:{SELLER}": 1200}, 0)
    else:
        expected = ((0, 0), {f"seller_pending:{SELLER}": 1200, f"seller_payable:{SELLER}": 0}, 1200)
    books, accounts = _books(ports)
    assert (
        books,
        {name: accounts.get(name, 0) for name in expected[1]},
        wallet.balances(SELLER)["USD"].pending,
    ) == expected
    assert accounts["psp_receivable"] == -1200
    assert _audit(ports).findings == []
