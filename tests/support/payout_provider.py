"""The payout provider simulator for the tests, over real HTTP on loopback: served by the PSP simulator's
server (as the local stack serves it), a client that sends the provider's or the PSP's key, and a webhook
endpoint that records every delivery (headers and raw body) and answers 200."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import urllib3

from local_stack.loopback import HttpRequest, HttpResponse, LoopbackServer
from local_stack.payout_provider.payments import Payment
from local_stack.payout_provider.simulator import PayoutProviderSimulator
from local_stack.psp.simulator import PspSimulator, bearer, psp_server
from tests.support.ports import free_port

PSP_KEY = "sk_test_psp_side"
PROVIDER_KEY = "pk_test_unit"
PROVIDER_SECRET = "whsec_provider_unit"
PSP_SECRET = "whsec_psp_unit"


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """A webhook endpoint on loopback that keeps every delivery."""

    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def respond(self, request: HttpRequest) -> HttpResponse:
        with self.lock:
            self.deliveries.append(
                Delivery(request.path, {k.lower(): v for k, v in request.headers.items()}, request.body)
            )
        return HttpResponse(200, b"{}")

    def received(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def wait_for(self, count: int, *, timeout: float = 5.0) -> list[Delivery]:
        """The first `count` deliveries, once they have arrived (fails the test after `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(found := self.received()) < count:
            assert time.monotonic() < deadline, f"{len(found)} of {count} webhooks arrived"
            time.sleep(0.02)
        return found


@dataclass
class ProviderOnLoopback:
    psp: PspSimulator
    provider: PayoutProviderSimulator
    base_url: str
    receiver: Receiver
    http: urllib3.PoolManager
    hooks_url: str = ""

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = PROVIDER_KEY,
        idempotency_key: str | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        """Send one request; its status and JSON body."""
        headers = bearer(key) if key is not None else {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        response = self.http.request(method, f"{self.base_url}{path}", body=data, headers=headers)
        return response.status, json.loads(response.data)

    def response(self, method: str, path: str, *, key: str | None) -> urllib3.BaseHTTPResponse:
        headers = bearer(key) if key is not None else {}
        return self.http.request(method, f"{self.base_url}{path}", headers=headers)

    def settled(self, payment_id: str, *, timeout: float = 5.0) -> Payment:
        """The payment once it is no longer submitted."""
        deadline = time.monotonic() + timeout
        while (payment := self.provider.payments.get(payment_id)) is None or payment.status == "submitted":
            assert time.monotonic() < deadline, f"{payment_id} still submitted"
            time.sleep(0.02)
        return payment


@contextmanager
def provider_on_loopback(*, settle_delay: float = 0.1) -> Iterator[ProviderOnLoopback]:
    """The PSP simulator's server with a new PSP and provider behind it, stopped afterwards. Starting and
    stopping the servers takes about a second: a module may share them, with `fresh_provider` per test."""
    psp = PspSimulator(api_key=PSP_KEY)
    receiver = Receiver()
    hooks = LoopbackServer(receiver.respond, host="127.0.0.1", port=free_port(), name="provider-hooks")
    hooks.start()
    host, port = hooks.httpd.server_address[:2]
    psp.webhooks.configure(url=f"http://{host!s}:{port}/psp", secret=PSP_SECRET)
    server_port = free_port()
    server = psp_server(psp, host="127.0.0.1", port=server_port)
    server.start()
    http = urllib3.PoolManager(retries=False, timeout=5)
    stack = ProviderOnLoopback(psp, psp.payout_provider, f"http://127.0.0.1:{server_port}", receiver, http)
    stack.hooks_url = f"http://{host!s}:{port}/provider"
    fresh_provider(stack, settle_delay=settle_delay)
    try:
        yield stack
    finally:
        server.stop()
        hooks.stop()
        stack.provider.stop()
        psp.webhooks.stop()


def fresh_provider(stack: ProviderOnLoopback, *, settle_delay: float = 0.1) -> ProviderOnLoopback:
    """A new provider behind the same server (the PSP simulator hands /payouts/ to whichever it holds), its
    webhooks to the receiver, whose earlier deliveries are forgotten."""
    stack.provider.stop()
    stack.provider = PayoutProviderSimulator(api_key=PROVIDER_KEY, settle_delay=settle_delay)
    stack.provider.webhooks.configure(url=stack.hooks_url, secret=PROVIDER_SECRET)
    stack.psp.payout_provider = stack.provider
    with stack.receiver.lock:
        stack.receiver.deliveries.clear()
    return stack
