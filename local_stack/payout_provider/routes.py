"""The payout provider simulator's routes: each turns an HTTP request into a call on its books."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from local_stack.payout_provider.errors import error
from local_stack.payout_provider.settlement import settlement_file
from local_stack.psp.charges import Reply, json_body

if TYPE_CHECKING:
    from local_stack.payout_provider.simulator import PayoutProviderSimulator

RouteHandler = Callable[["PayoutProviderSimulator", re.Match[str], dict[str, list[str]], dict[str, str], bytes], Reply]


def _body_invalid() -> Reply:
    return error(400, "body_invalid", "Body must be a JSON object.")


def put_payee(sim: PayoutProviderSimulator, match: re.Match[str], _: Any, __: dict[str, str], body: bytes) -> Reply:
    request = json_body(body)
    if request is None:
        return _body_invalid()
    return sim.payees.put(unquote(match.group("payee_id")), request)


def create_payment(
    sim: PayoutProviderSimulator, _: re.Match[str], __: Any, headers: dict[str, str], body: bytes
) -> Reply:
    request = json_body(body)
    if request is None:
        return _body_invalid()
    return sim.payments.create(headers.get("idempotency-key"), request)


def list_payments(sim: PayoutProviderSimulator, _: re.Match[str], query: dict[str, list[str]], *__: Any) -> Reply:
    reference = query.get("reference", [None])[-1]
    return Reply(200, {"object": "list", "data": [p.public() for p in sim.payments.find(reference=reference)]})


def get_payment(sim: PayoutProviderSimulator, match: re.Match[str], *_: Any) -> Reply:
    payment = sim.payments.get(unquote(match.group("payment_id")))
    if payment is None:
        return error(404, "resource_missing", "No such payment.")
    return Reply(200, payment.public())


def settlements(sim: PayoutProviderSimulator, _: re.Match[str], query: dict[str, list[str]], *__: Any) -> Reply:
    return settlement_file(sim.payments.find(), sim.settlements, query)


def webhook_faults(sim: PayoutProviderSimulator, _: re.Match[str], __: Any, ___: dict[str, str], body: bytes) -> Reply:
    """POST /payouts/v1/_simulator/webhooks {"drop": bool, "duplicate": bool, "reorder": bool} (test control)."""
    request = json_body(body)
    if request is None:
        return _body_invalid()
    return Reply(200, sim.webhooks.faults.configure(request))


def brownout(sim: PayoutProviderSimulator, _: re.Match[str], __: Any, ___: dict[str, str], body: bytes) -> Reply:
    """POST /payouts/v1/_simulator/brownout {"latency_ms", "error_rate", "seconds"}: the provider's own
    brownout, as the PSP's /_sim/brownout (its routes degraded, never the PSP's; resilience tests)."""
    request = json_body(body)
    if request is None:
        return _body_invalid()
    return sim.brownout.configure(request)


ROUTES: list[tuple[str, re.Pattern[str], RouteHandler]] = [
    ("PUT", re.compile(r"^/payouts/v1/payees/(?P<payee_id>[^/]+)$"), put_payee),
    ("POST", re.compile(r"^/payouts/v1/payments$"), create_payment),
    ("GET", re.compile(r"^/payouts/v1/payments$"), list_payments),
    ("GET", re.compile(r"^/payouts/v1/payments/(?P<payment_id>[^/]+)$"), get_payment),
    ("GET", re.compile(r"^/payouts/v1/settlements$"), settlements),
    ("POST", re.compile(r"^/payouts/v1/_simulator/webhooks$"), webhook_faults),
    ("POST", re.compile(r"^/payouts/v1/_simulator/brownout$"), brownout),
]
