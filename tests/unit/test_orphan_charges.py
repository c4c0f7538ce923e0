"""A PSP verdict that contradicts a decided order: a "succeeded" (webhook or recovery lookup) for an order we
decided FAILED is an orphan charge. It is never applied (no credit, no booking), and never dropped: it is
recorded on the order once by `resolve_order`, which every verdict goes through (the DynamoDB adapter counts
and logs the first record: tests/integration/test_orphan_charges.py). And a PSP refusal we do not know is
reported, with the PSP's code."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from functions.common.events import OrderStatus
from functions.common.observability import logger, metrics
from functions.executor.domain import OrderExecution, resolve_order, target_status
from functions.psp.client import PspClient
from functions.psp.models import ChargeResult
from local_stack.loopback import LoopbackServer
from local_stack.psp.simulator import PspSimulator, psp_server
from tests.support.fakes import Recorder
from tests.support.ports import free_port


class Executions:
    """The executor's table in memory: conditional decides, and the orphan charges recorded per order."""

    def __init__(self, *executions: OrderExecution) -> None:
        self.orders = {e.payment_order_id: e for e in executions}
        self.orphans: dict[str, str] = {}  # payment_order_id -> the PSP's charge, recorded once
        self.handed_on: list[str] = []
        self.decided_by_someone_else: OrderStatus | None = None

    def decide(
        self, payment_order_id: str, *, expected: OrderStatus, result: ChargeResult, attempt: int | None = None
    ) -> OrderExecution:
        current = self.orders[payment_order_id]
        if self.decided_by_someone_else is not None:  # a concurrent writer decided it first
            current = current.model_copy(update={"status": self.decided_by_someone_else, "psp_reference": None})
            self.orders[payment_order_id] = current
        if current.status != expected:
            return current
        current = current.model_copy(
            update={
                "status": target_status(result),
                "psp_reference": result.psp_reference,
                "failure_code": result.failure_code,
            }
        )
        self.orders[payment_order_id] = current
        return current

    def record_orphan(self, payment_order_id: str, psp_reference: str) -> OrderExecution:
        current = self.orders[payment_order_id]
        if current.status == "FAILED" and current.orphan_psp_reference is None:
            current = current.model_copy(update={"orphan_psp_reference": psp_reference})
            self.orders[payment_order_id] = current
            self.orphans[payment_order_id] = psp_reference
        return current

    def mark_handed_on(self, payment_order_id: str) -> None:
        self.handed_on.append(payment_order_id)


def execution(status: OrderStatus, failure_code: str | None = None) -> OrderExecution:
    return OrderExecution(
        payment_order_id="po_1",
        payment_id="pay_1",
        seller_id="seller_a",
        amount=700,
        currency="USD",
        status=status,
        failure_code=failure_code,
    )


@pytest.fixture
def published() -> Iterator[dict[str, Any]]:
    """The metrics published meanwhile (Powertools' buffer, flushed by each handler)."""
    metrics.clear_metrics()
    yield metrics.metric_set
    metrics.clear_metrics()


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the functions' Powertools logger writes meanwhile (one JSON object a line)."""
    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    return stream


def error_logs(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line.get("level") == "ERROR"]


def test_a10_a_succeeded_verdict_for_a_failed_order_is_an_orphan_charge_recorded_once() -> None:
    # Given an order recovery decided FAILED (the PSP had no charge for it then)
    store, wallet, status = Executions(execution("FAILED", "psp_no_charge")), Recorder(), Recorder()

    # When the PSP says, late, that it charged it - twice (the webhook retried)
    for _ in range(2):
        resolved = resolve_order(
            store.orders["po_1"],
            ChargeResult("succeeded", "ch_late"),
            store=store,
            wallet=wallet,
            order_status=status,
        )

    # Then the order stays FAILED and nothing credits the seller: the verdict is not applied
    assert (resolved.status, resolved.psp_reference, resolved.failure_code) == ("FAILED", None, "psp_no_charge")
    assert wallet.messages == []
    assert [m.model_dump()["status"] for m in status.messages] == ["FAILED", "FAILED"]
    # And the charge is recorded on the order once, and the order leaves the recovery index each time
    assert store.orphans == {"po_1": "ch_late"}
    assert resolved.orphan_psp_reference == "ch_late"
    assert store.handed_on == ["po_1", "po_1"]


def test_a10_a_succeeded_verdict_that_loses_the_race_to_a_failed_decision_is_an_orphan_charge() -> None:
    # Given a PENDING order that another writer decides FAILED while the "succeeded" webhook is applied
    store = Executions(execution("PENDING"))
    store.decided_by_someone_else = "FAILED"

    resolved = resolve_order(
        store.orders["po_1"],
        ChargeResult("succeeded", "ch_race"),
        store=store,
        wallet=Recorder(),
        order_status=Recorder(),
    )

    assert resolved.status == "FAILED"
    assert store.orphans == {"po_1": "ch_race"}


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        ("FAILED", ChargeResult("failed", "ch_1", "card_declined")),  # agrees
        ("FAILED", ChargeResult("pending", "ch_1")),  # no money taken yet
        ("FAILED", ChargeResult("succeeded", None)),  # nothing to name: not a charge
        ("PENDING", ChargeResult("succeeded", "ch_1")),  # applied: the order SUCCEEDS
    ],
)
def test_a10_verdicts_that_do_not_contradict_a_failed_order_record_nothing(
    status: OrderStatus, verdict: ChargeResult
) -> None:
    store = Executions(execution(status))
    resolve_order(store.orders["po_1"], verdict, store=store, wallet=Recorder(), order_status=Recorder())
    assert store.orphans == {}


@pytest.fixture
def psp_url() -> Iterator[str]:
    sim = PspSimulator(api_key="sk_test_refusals")
    port = free_port()
    server: LoopbackServer = psp_server(sim, host="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        sim.webhooks.stop()


def charge(psp: PspClient, key: str, *, token: str = "tok_visa", amount: int = 1000) -> ChargeResult:
    return psp.charge(idempotency_key=key, amount=amount, currency="USD", payment_method=token, merchant_reference=key)


def test_a10_an_unknown_psp_refusal_fails_the_charge_and_is_reported_with_the_psp_code(
    psp_url: str, published: dict[str, Any], logged: io.StringIO
) -> None:
    psp = PspClient(psp_url, api_key=lambda: "sk_test_refusals", timeout_seconds=2, max_retries=0)
    # Given refusals the PSP documents: a declined card (402) and a token it does not know (400)
    assert charge(psp, "po_declined", token="tok_chargeDeclined").failure_code == "card_declined"
    assert charge(psp, "po_bad_token", token="tok_nonsense").failure_code == "token_invalid"
    assert "PspUnknownRefusal" not in published

    # When the PSP refuses a request for a reason we do not expect (here: an amount it calls invalid)
    refused = charge(psp, "po_refused", amount=-5)

    # Then the order fails with the PSP's code and no reference, and the refusal is reported
    assert refused == ChargeResult("failed", None, "parameter_invalid")
    assert published["PspUnknownRefusal"]["Value"] == [1.0]
    errors = error_logs(logged)
    assert [(line["message"], line["operation"], line["psp_status"], line["psp_code"]) for line in errors] == [
        ("the PSP refused a request for a reason we do not know", "charge", 400, "parameter_invalid")
    ]
