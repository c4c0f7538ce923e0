"""What the simulated PSP does after answering, and the routes to watch and steer it: pending charges settle
a few seconds later by a signed webhook; a merchant can ask "what did you do with this key?" without
repeating the request; tests can fault the webhooks and list every event sent. (Payouts are not the PSP's:
they go to the payout provider, local_stack/payout_provider.)"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from local_stack.psp.charges import Charge, Reply, json_body
from local_stack.psp.webhooks import WebhookSender

if TYPE_CHECKING:
    from local_stack.psp.simulator import PspSimulator, RouteHandler


class PendingSettlement:
    """tok_pending: the charge settles (succeeds) a few seconds after it was made, by webhook."""

    def __init__(self, webhooks: WebhookSender, *, delay: float = 3.0) -> None:
        self.webhooks = webhooks
        self.delay = delay

    def __call__(self, charge: Charge) -> None:
        threading.Timer(self.delay, self._settle, args=(charge,)).start()

    def _settle(self, charge: Charge) -> None:
        charge.status = "succeeded"
        self.webhooks.emit("charge.succeeded", charge.public())


def charge_by_idempotency_key(sim: PspSimulator, match: re.Match[str], *_: Any) -> Reply:
    found = sim.charges.by_idempotency_key(match.group("key"))
    if found is None:
        error = {"type": "invalid_request_error", "code": "resource_missing"}
        return Reply(404, {"error": {**error, "message": "Nothing was created with this idempotency key."}})
    return Reply(200, found.public())


def webhook_faults(sim: PspSimulator, _: re.Match[str], __: Any, ___: dict[str, str], body: bytes) -> Reply:
    """POST /v1/_simulator/webhooks {"drop": bool, "duplicate": bool, "reorder": bool} (test control)."""
    return Reply(200, sim.webhooks.faults.configure(json_body(body) or {}))


def list_events(sim: PspSimulator, *_: Any) -> Reply:
    return Reply(200, {"object": "list", "data": list(sim.webhooks.sent)})


ROUTES: list[tuple[str, re.Pattern[str], RouteHandler]] = [
    ("GET", re.compile(r"^/v1/charges/by_idempotency_key/(?P<key>[\w-]+)$"), charge_by_idempotency_key),
    ("POST", re.compile(r"^/v1/_simulator/webhooks$"), webhook_faults),
    ("GET", re.compile(r"^/v1/events$"), list_events),
]
