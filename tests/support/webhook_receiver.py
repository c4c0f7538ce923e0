"""A marketplace's webhook endpoint for the tests: a real HTTP server on loopback that records every
delivery attempt, checks its Payments-Signature with the endpoint's secret, and answers 500 to the first
`failures_per_event` attempts of each event id, then 200."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from functions.events.signing import SIGNATURE_HEADER, verify


@dataclass(frozen=True)
class Attempt:
    event_id: str
    event_type: str
    body: dict[str, Any]
    signature: str
    signature_valid: bool
    answered: int
    received_at: float


@dataclass
class WebhookReceiver:
    failures_per_event: int = 2
    secret: str | None = None  # set once the endpoint is registered
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.attempt(raw, self.headers.get(SIGNATURE_HEADER), self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True, name="webhook-receiver").start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def attempt(self, raw: bytes, signature: str | None, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(raw)
        valid = self.secret is not None and verify(signature, raw, secret=self.secret, now=int(time.time()))
        with self.lock:
            earlier = sum(1 for a in self.attempts if a.event_id == body["id"])
            status = 500 if earlier < self.failures_per_event else 200
            self.attempts.append(
                Attempt(body["id"], body["type"], body, signature or "", valid, status, time.monotonic())
            )
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def of(self, event_id: str) -> list[Attempt]:
        with self.lock:
            return [a for a in self.attempts if a.event_id == event_id]

    def wait_delivered(self, event_ids: list[str], *, timeout: float) -> dict[str, list[Attempt]]:
        """Every attempt at each event, once each has been answered 200 (fails the test after `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            attempts = {event_id: self.of(event_id) for event_id in event_ids}
            if all(any(a.answered == 200 for a in found) for found in attempts.values()):
                return attempts
            missing = [e for e, found in attempts.items() if not any(a.answered == 200 for a in found)]
            assert time.monotonic() < deadline, f"not delivered: {missing}"
            time.sleep(0.2)
