"""The payout provider simulator (Tipalti-like: payees, then payments), served on loopback under
`/payouts/` by the PSP simulator's server (local_stack/psp/simulator.py) but separate from the PSP: its own
API key, its own webhooks (`Payouts-Signature`, its own url and secret), its own settlement file, and no
share in the PSP's brownout. Every route needs `Authorization: Bearer <key>`; the key comes from
PAYMENTS_PAYOUT_PROVIDER_API_KEY (default pk_test_payouts). Without it, or with another key - the PSP's
included - the answer is 401 and nothing happens."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local_stack.payout_provider.errors import error
from local_stack.payout_provider.payees import PayeeBook
from local_stack.payout_provider.payments import PaymentBook
from local_stack.payout_provider.routes import ROUTES, RouteHandler
from local_stack.psp.bearer_auth import refusal as bearer_refusal
from local_stack.psp.brownout import Brownout
from local_stack.psp.charges import Reply
from local_stack.psp.settlement import SettlementBook
from local_stack.psp.webhooks import WebhookSender

API_KEY_ENV = "PAYMENTS_PAYOUT_PROVIDER_API_KEY"
DEFAULT_API_KEY = "pk_test_payouts"
PATH_PREFIX = "/payouts/"  # the PSP simulator's server hands these paths to the provider
CONTROL_PREFIX = "/payouts/v1/_simulator/"  # its own controls, never degraded by its brownout
SIGNATURE_HEADER = "Payouts-Signature"


def api_key_from_env() -> str:
    """The provider's API key: PAYMENTS_PAYOUT_PROVIDER_API_KEY, or pk_test_payouts."""
    return os.environ.get(API_KEY_ENV) or DEFAULT_API_KEY


def payment_event(event_id: str, event_type: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    """The provider's webhook body: the payment itself under `data`."""
    return {"id": event_id, "type": event_type, "created": created, "data": obj}


class PayoutProviderSimulator:
    def __init__(self, *, api_key: str | None = None, settle_delay: float = 1.0) -> None:
        self.api_key = api_key if api_key is not None else api_key_from_env()
        self.webhooks = WebhookSender(
            signature_header=SIGNATURE_HEADER, event_shape=payment_event, name="payout-provider-webhooks"
        )
        self.payees = PayeeBook()
        self.payments = PaymentBook(self.payees, self.webhooks, settle_delay=settle_delay)
        self.settlements = SettlementBook()
        self.routes: list[tuple[str, re.Pattern[str], RouteHandler]] = list(ROUTES)
        # Its own brownout (POST /payouts/v1/_simulator/brownout); the PSP's never reaches it.
        self.brownout = Brownout()

    def authenticate(self, authorization: str | None) -> Reply | None:
        """None if the request carries the provider's key as a bearer token; else the 401 to answer."""
        return bearer_refusal(authorization, self.api_key)

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        url = urlsplit(raw_path)
        lowered = {k.lower(): v for k, v in headers.items()}
        refusal = self.authenticate(lowered.get("authorization"))
        if refusal is not None:
            return refusal
        if not url.path.startswith(CONTROL_PREFIX):
            degraded = self.brownout.degrade()  # before anything is done: no payee, no payment
            if degraded is not None:
                return degraded
        for route_method, pattern, handler in self.routes:
            match = pattern.match(url.path)
            if match and route_method == method:
                return handler(self, match, parse_qs(url.query), lowered, body)
        return error(404, "resource_missing", f"Unrecognized request URL ({method} {url.path}).")

    def stop(self) -> None:
        self.webhooks.stop()
