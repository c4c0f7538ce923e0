"""The PSP simulator: a Stripe-style HTTP API on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local_stack.loopback import HttpRequest, HttpResponse, LoopbackServer
from local_stack.psp.charges import ChargeBook, Reply
from local_stack.psp.payouts import ROUTES as PAYOUT_ROUTES
from local_stack.psp.payouts import PayoutBook, PendingSettlement
from local_stack.psp.settlement import settlement_route
from local_stack.psp.webhooks import WebhookSender

RouteHandler = Callable[["PspSimulator", re.Match[str], dict[str, list[str]], dict[str, str], bytes], Reply]


class PspSimulator:
    def __init__(
        self, *, lost_response_delay: float = 5.0, payout_settle_delay: float = 1.0, pending_settle_delay: float = 3.0
    ) -> None:
        self.charges = ChargeBook(lost_response_delay=lost_response_delay)
        self.webhooks = WebhookSender()
        self.payouts = PayoutBook(self.webhooks, settle_delay=payout_settle_delay)
        self.charges.on_pending = PendingSettlement(self.webhooks, delay=pending_settle_delay)
        self.routes: list[tuple[str, re.Pattern[str], RouteHandler]] = [
            ("POST", re.compile(r"^/v1/charges$"), _create_charge),
            ("GET", re.compile(r"^/v1/charges$"), _list_charges),
            ("GET", re.compile(r"^/v1/charges/(?P<charge_id>ch_\w+)$"), _get_charge),
            ("GET", re.compile(r"^/health$"), lambda *_: Reply(200, {"status": "ok"})),
            ("GET", re.compile(r"^/v1/settlements$"), settlement_route),
            *PAYOUT_ROUTES,
        ]

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        url = urlsplit(raw_path)
        query = parse_qs(url.query)
        lowered = {k.lower(): v for k, v in headers.items()}
        for route_method, pattern, handler in self.routes:
            match = pattern.match(url.path)
            if match and route_method == method:
                return handler(self, match, query, lowered, body)
        return Reply(
            404,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "message": f"Unrecognized request URL ({method} {url.path}).",
                }
            },
        )


def _json_body(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _create_charge(
    sim: PspSimulator, _: re.Match[str], __: dict[str, list[str]], headers: dict[str, str], body: bytes
) -> Reply:
    request = _json_body(body)
    if request is None:
        return Reply(
            400,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "body_invalid",
                    "message": "Body must be a JSON object.",
                }
            },
        )
    return sim.charges.create(headers.get("idempotency-key"), request)


def _list_charges(
    sim: PspSimulator, _: re.Match[str], query: dict[str, list[str]], __: dict[str, str], ___: bytes
) -> Reply:
    reference = query.get("merchant_reference", [None])[-1]
    return Reply(200, {"object": "list", "data": [c.public() for c in sim.charges.find(merchant_reference=reference)]})


def _get_charge(sim: PspSimulator, match: re.Match[str], *_: Any) -> Reply:
    charge = sim.charges.get(match.group("charge_id"))
    if charge is None:
        return Reply(
            404, {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such charge."}}
        )
    return Reply(200, charge.public())


def psp_server(simulator: PspSimulator, *, host: str, port: int) -> LoopbackServer:
    def respond(request: HttpRequest) -> HttpResponse:
        reply = simulator.handle(request.method, request.path, request.headers, request.body)
        # tok_timeout: the reply is held back until the client has given up, so its response is lost
        return HttpResponse(reply.status, json.dumps(reply.body).encode(), delay_seconds=reply.delay_seconds)

    return LoopbackServer(respond, host=host, port=port, name="psp-simulator")
