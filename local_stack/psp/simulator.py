"""The PSP simulator: a Stripe-style HTTP API on loopback. Like a real PSP, every route needs the
merchant's secret key, `Authorization: Bearer <key>`; without it, or with another key, the answer is
401 and nothing happens. The key comes from PAYMENTS_PSP_API_KEY (default sk_test_local); the local
stack stores the same key in the PSP secret the functions read.

The same server also serves the separate payout provider's simulator (local_stack/payout_provider): every
path under `/payouts/` goes to it, with its own key, and the PSP's brownout does not reach it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local_stack.loopback import HttpRequest, HttpResponse, LoopbackServer
from local_stack.payout_provider.simulator import PATH_PREFIX as PAYOUT_PROVIDER_PREFIX
from local_stack.payout_provider.simulator import PayoutProviderSimulator
from local_stack.psp.async_events import ROUTES as EVENT_ROUTES
from local_stack.psp.async_events import PendingSettlement
from local_stack.psp.bearer_auth import refusal as bearer_refusal
from local_stack.psp.brownout import Brownout
from local_stack.psp.charges import ChargeBook, Reply, json_body
from local_stack.psp.disputes import ROUTES as DISPUTE_ROUTES
from local_stack.psp.disputes import DisputeBook
from local_stack.psp.refunds import ROUTES as REFUND_ROUTES
from local_stack.psp.refunds import RefundBook
from local_stack.psp.settlement import settlement_route
from local_stack.psp.webhooks import WebhookSender

API_KEY_ENV = "PAYMENTS_PSP_API_KEY"
DEFAULT_API_KEY = "sk_test_local"

RouteHandler = Callable[["PspSimulator", re.Match[str], dict[str, list[str]], dict[str, str], bytes], Reply]
# The simulator's own controls (brownouts, webhook faults) are never degraded by a brownout.
CONTROL_PATHS = ("/_sim/", "/v1/_simulator/")


def api_key_from_env() -> str:
    """The simulator's secret key: PAYMENTS_PSP_API_KEY, or sk_test_local."""
    return os.environ.get(API_KEY_ENV) or DEFAULT_API_KEY


def bearer(api_key: str) -> dict[str, str]:
    """The header every caller of the simulator sends."""
    return {"Authorization": f"Bearer {api_key}"}


class PspSimulator:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        lost_response_delay: float = 5.0,
        pending_settle_delay: float = 3.0,
        dispute_open_delay: float = 3.0,
        payout_provider: PayoutProviderSimulator | None = None,
    ) -> None:
        self.api_key = api_key if api_key is not None else api_key_from_env()
        # A separate provider served alongside (paths under /payouts/); its key from its own setting.
        self.payout_provider = payout_provider if payout_provider is not None else PayoutProviderSimulator()
        self.charges = ChargeBook(lost_response_delay=lost_response_delay)
        self.webhooks = WebhookSender()
        self.refunds = RefundBook(self.charges, self.webhooks)
        self.charges.on_pending = PendingSettlement(self.webhooks, delay=pending_settle_delay)
        self.disputes = DisputeBook(self.webhooks, open_delay=dispute_open_delay)
        self.charges.on_disputed = self.disputes
        self.refunds.disputed = self.disputes.disputed
        self.brownout = Brownout()
        self.routes: list[tuple[str, re.Pattern[str], RouteHandler]] = [
            ("POST", re.compile(r"^/v1/charges$"), _create_charge),
            ("GET", re.compile(r"^/v1/charges$"), _list_charges),
            ("GET", re.compile(r"^/v1/charges/(?P<charge_id>ch_\w+)$"), _get_charge),
            *REFUND_ROUTES,
            ("GET", re.compile(r"^/health$"), lambda *_: Reply(200, {"status": "ok"})),
            ("GET", re.compile(r"^/v1/settlements$"), settlement_route),
            *EVENT_ROUTES,
            *DISPUTE_ROUTES,
            ("POST", re.compile(r"^/_sim/brownout$"), _brownout),
        ]

    def authenticate(self, authorization: str | None) -> Reply | None:
        """None if the request carries our key as a bearer token; else the 401 to answer."""
        return bearer_refusal(authorization, self.api_key)

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        url = urlsplit(raw_path)
        if url.path.startswith(PAYOUT_PROVIDER_PREFIX):
            return self.payout_provider.handle(method, raw_path, headers, body)
        query = parse_qs(url.query)
        lowered = {k.lower(): v for k, v in headers.items()}
        refusal = self.authenticate(lowered.get("authorization"))
        if refusal is not None:
            return refusal
        if not url.path.startswith(CONTROL_PATHS):
            degraded = self.brownout.degrade()  # before anything is done: no charge, no refund
            if degraded is not None:
                return degraded
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


def _body_invalid() -> Reply:
    return Reply(
        400,
        {"error": {"type": "invalid_request_error", "code": "body_invalid", "message": "Body must be a JSON object."}},
    )


def _create_charge(
    sim: PspSimulator, _: re.Match[str], __: dict[str, list[str]], headers: dict[str, str], body: bytes
) -> Reply:
    request = json_body(body)
    if request is None:
        return _body_invalid()
    return sim.charges.create(headers.get("idempotency-key"), request)


def _brownout(sim: PspSimulator, _: re.Match[str], __: dict[str, list[str]], ___: dict[str, str], body: bytes) -> Reply:
    request = json_body(body)
    if request is None:
        return _body_invalid()
    return sim.brownout.configure(request)


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
        headers = {"Content-Type": "application/json"}
        if reply.status == 401:
            provider = urlsplit(request.path).path.startswith(PAYOUT_PROVIDER_PREFIX)
            realm = "payout-provider-simulator" if provider else "psp-simulator"
            headers["WWW-Authenticate"] = f'Bearer realm="{realm}"'
        # tok_timeout: the reply is held back until the client has given up, so its response is lost
        return HttpResponse(
            reply.status, json.dumps(reply.body).encode(), headers=headers, delay_seconds=reply.delay_seconds
        )

    return LoopbackServer(respond, host=host, port=port, name="psp-simulator")
