"""The PSP simulator's disputes: a tok_createDispute charge succeeds, is disputed a moment later by a
signed webhook, and closes won or lost once; the balance movements are recorded for the day file."""

from __future__ import annotations

import time
from typing import Any

from local_stack.psp.disputes import dispute_fee
from local_stack.psp.simulator import PspSimulator, bearer

KEY = "sk_test_disputes"


def _call(sim: PspSimulator, method: str, path: str, body: bytes = b"", key: str = "po_1") -> Any:
    headers = {**bearer(KEY), "Idempotency-Key": key}
    return sim.handle(method, path, headers, body)


def _wait_for_dispute(sim: PspSimulator, reference: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        found = _call(sim, "GET", f"/v1/disputes?merchant_reference={reference}").body["data"]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, found
            return dict(found[0])
        time.sleep(0.02)


def test_a_disputed_charge_succeeds_then_is_disputed_with_the_fee_and_a_created_event() -> None:
    sim = PspSimulator(api_key=KEY, dispute_open_delay=0.05)
    try:
        body = (
            b'{"amount": 2599, "currency": "USD", "payment_method": "tok_createDispute", "merchant_reference": "po_1"}'
        )
        charge = _call(sim, "POST", "/v1/charges", body)
        assert (charge.status, charge.body["status"]) == (200, "succeeded")

        dispute = _wait_for_dispute(sim, "po_1")

        assert {k: dispute[k] for k in ("charge", "amount", "fee", "currency", "status", "reason")} == {
            "charge": charge.body["id"],
            "amount": 2599,
            "fee": 1500,
            "currency": "USD",
            "status": "needs_response",
            "reason": "fraudulent",
        }
        created = [e for e in sim.webhooks.sent if e["type"] == "charge.dispute.created"]
        assert [e["data"]["object"]["id"] for e in created] == [dispute["id"]]
        assert [(m.type, m.amount, m.fee) for m in sim.disputes.movements] == [("dispute", 2599, 1500)]
    finally:
        sim.webhooks.stop()


def test_closing_won_gives_the_amount_back_once_and_another_outcome_is_refused() -> None:
    sim = PspSimulator(api_key=KEY, dispute_open_delay=0.0)
    try:
        body = (
            b'{"amount": 800, "currency": "EUR", "payment_method": "tok_createDispute", "merchant_reference": "po_2"}'
        )
        _call(sim, "POST", "/v1/charges", body, key="po_2")
        dispute_id = _wait_for_dispute(sim, "po_2")["id"]

        won = _call(sim, "POST", f"/v1/disputes/{dispute_id}/close", b'{"outcome": "won"}')
        again = _call(sim, "POST", f"/v1/disputes/{dispute_id}/close", b'{"outcome": "won"}')
        other = _call(sim, "POST", f"/v1/disputes/{dispute_id}/close", b'{"outcome": "lost"}')
        bad = _call(sim, "POST", f"/v1/disputes/{dispute_id}/close", b'{"outcome": "maybe"}')
        unknown = _call(sim, "POST", "/v1/disputes/dp_unknown/close", b'{"outcome": "won"}')

        assert (won.status, won.body["status"], again.status, again.body["status"]) == (200, "won", 200, "won")
        assert (other.status, other.body["error"]["code"]) == (400, "dispute_already_closed")
        assert (bad.status, bad.body["error"]["param"]) == (400, "outcome")
        assert unknown.status == 404
        closed = [e for e in sim.webhooks.sent if e["type"] == "charge.dispute.closed"]
        assert [e["data"]["object"]["status"] for e in closed] == ["won"]
        assert [(m.type, m.amount, m.fee, m.currency) for m in sim.disputes.movements] == [
            ("dispute", 800, 2000, "EUR"),
            ("dispute_reversal", 800, 0, "EUR"),
        ]
    finally:
        sim.webhooks.stop()


def test_closing_lost_moves_nothing_back() -> None:
    sim = PspSimulator(api_key=KEY, dispute_open_delay=0.0)
    try:
        body = (
            b'{"amount": 300, "currency": "USD", "payment_method": "tok_createDispute", "merchant_reference": "po_3"}'
        )
        _call(sim, "POST", "/v1/charges", body, key="po_3")
        dispute_id = _wait_for_dispute(sim, "po_3")["id"]

        lost = _call(sim, "POST", f"/v1/disputes/{dispute_id}/close", b'{"outcome": "lost"}')

        assert (lost.status, lost.body["status"]) == (200, "lost")
        assert [m.type for m in sim.disputes.movements] == ["dispute"]
    finally:
        sim.webhooks.stop()


def test_the_dispute_fee_is_fixed_per_currency_in_its_minor_units() -> None:
    assert [dispute_fee(c) for c in ("USD", "EUR", "GBP", "JPY", "CHF", "KWD", "KRW")] == [
        1500,
        2000,
        2000,
        2000,
        1500,
        15000,
        15,
    ]


def test_a_disputed_charge_cannot_be_refunded() -> None:
    # Given a charge the buyer disputed
    sim = PspSimulator(api_key=KEY, dispute_open_delay=0.0)
    try:
        body = (
            b'{"amount": 1200, "currency": "USD", "payment_method": "tok_createDispute", "merchant_reference": "po_3"}'
        )
        charge = _call(sim, "POST", "/v1/charges", body, key="po_3")
        _wait_for_dispute(sim, "po_3")

        # When we ask for a refund of it
        refund = _call(
            sim, "POST", "/v1/refunds", f'{{"charge": "{charge.body["id"]}", "amount": 1200}}'.encode(), key="rf_3"
        )

        # Then the PSP refuses it: the dispute already returns the buyer's money
        assert (refund.status, refund.body["error"]["code"]) == (400, "charge_disputed")
    finally:
        sim.webhooks.stop()
