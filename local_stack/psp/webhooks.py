"""The simulator's webhook sender: signed events, delivered in the background with retries and
backoff, and - on request - dropped, duplicated or reordered, as real PSPs sometimes do. The PSP and the
payout provider each have their own sender: their own url, secret, signature header and event shape."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("local_stack.psp.webhooks")


@dataclass
class WebhookFaults:
    drop: bool = False  # never deliver (the recovery job must find the outcome)
    duplicate: bool = False  # deliver every event twice
    reorder: bool = False  # hold non-final events back so they arrive after the final one

    def configure(self, request: dict[str, Any]) -> dict[str, bool]:
        """Set the faults named in `request` ({"drop": bool, "duplicate": bool, "reorder": bool}); the faults now."""
        for name in ("drop", "duplicate", "reorder"):
            if name in request:
                setattr(self, name, bool(request[name]))
        return {"drop": self.drop, "duplicate": self.duplicate, "reorder": self.reorder}


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    event: dict[str, Any] = field(compare=False)
    attempt: int = field(default=0, compare=False)


def stripe_event(event_id: str, event_type: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    """The PSP's event: the object under data.object, as Stripe sends it."""
    return {"id": event_id, "object": "event", "type": event_type, "created": created, "data": {"object": obj}}


EventShape = Callable[[str, str, int, dict[str, Any]], dict[str, Any]]


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookSender:
    def __init__(
        self,
        *,
        max_attempts: int = 8,
        first_backoff: float = 0.5,
        reorder_hold: float = 2.0,
        timeout: float = 10,
        signature_header: str = "PSP-Signature",
        event_shape: EventShape = stripe_event,
        name: str = "psp-webhooks",
    ) -> None:
        self.signature_header = signature_header
        self.event_shape = event_shape
        self.url: str | None = None
        self.secret: str | None = None
        self.faults = WebhookFaults()
        # Injected per event (the soak's seeded plan): given the event type, "drop", "duplicate",
        # "reorder" or None, and how much longer a reordered event is held back.
        self.fault: Callable[[str], tuple[str | None, float]] | None = None
        self.max_attempts = max_attempts
        self.first_backoff = first_backoff
        self.reorder_hold = reorder_hold
        self.timeout = timeout
        self.sent: list[dict[str, Any]] = []  # every event emitted (delivered or not), for inspection
        self._heap: list[_Delivery] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stop = threading.Event()
        # Started by the first delivery: a simulator that never sends a webhook keeps no thread waiting.
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def configure(self, *, url: str, secret: str) -> None:
        self.url, self.secret = url, secret

    def emit(self, event_type: str, obj: dict[str, Any], *, final: bool = True, delay: float = 0.0) -> dict[str, Any]:
        event = self.event_shape(f"evt_{uuid.uuid4().hex[:24]}", event_type, int(time.time()), dict(obj))
        self.sent.append(event)
        planned, hold = self.fault(event_type) if self.fault is not None else (None, 0.0)
        if self.faults.drop or planned == "drop" or self.url is None:
            return event
        if self.faults.reorder and not final:
            delay += self.reorder_hold
        delay += hold
        copies = 2 if self.faults.duplicate or planned == "duplicate" else 1
        with self._cv:
            for copy in range(copies):
                heapq.heappush(self._heap, _Delivery(time.monotonic() + delay + copy * 0.2, next(self._seq), event))
            if self._thread.ident is None and not self._stop.is_set():
                self._thread.start()
            self._cv.notify()
        return event

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cv:
                while not self._heap or self._heap[0].due > time.monotonic():
                    wait = None if not self._heap else max(0.0, self._heap[0].due - time.monotonic())
                    self._cv.wait(timeout=min(wait, 1.0) if wait is not None else 1.0)
                    if self._stop.is_set():
                        return
                delivery = heapq.heappop(self._heap)
            threading.Thread(target=self._deliver, args=(delivery,), daemon=True).start()

    def _deliver(self, delivery: _Delivery) -> None:
        if self.url is None or self.secret is None:
            return
        body = json.dumps(delivery.event).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback only
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                self.signature_header: signature(self.secret, int(time.time()), body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                if 200 <= response.status < 300:
                    return
        except OSError as error:
            log.info("webhook %s attempt %d failed: %s", delivery.event["id"], delivery.attempt + 1, error)
        if delivery.attempt + 1 >= self.max_attempts:
            log.warning("webhook %s given up after %d attempts", delivery.event["id"], self.max_attempts)
            return
        backoff = self.first_backoff * 2**delivery.attempt
        with self._cv:
            heapq.heappush(
                self._heap,
                _Delivery(time.monotonic() + backoff, next(self._seq), delivery.event, delivery.attempt + 1),
            )
            self._cv.notify()

    def stop(self) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
