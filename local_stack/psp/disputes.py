"""The simulated PSP's disputes (chargebacks), Stripe-style.

A charge made with `tok_createDispute` succeeds; a few seconds later the buyer's bank disputes it: the PSP
takes the amount and its dispute fee from the merchant's balance and sends a signed
`charge.dispute.created`. `POST /v1/disputes/{id}/close {"outcome": "won"|"lost"}` decides it and sends
`charge.dispute.closed`: won gives the amount back (the PSP keeps the fee, as Stripe does in most
countries); lost keeps both.

The dispute fee is a fixed amount per currency (DISPUTE_FEES; Stripe's published fees): 15 major units
in any other currency. Every movement of the merchant's balance is recorded as a settlement row (`dispute`
when the money is taken, `dispute_reversal` when a won dispute gives it back), for the day file."""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from local_stack.psp.charges import DISPUTED_TOKEN, Charge, Reply, json_body
from local_stack.psp.webhooks import WebhookSender

if TYPE_CHECKING:
    from local_stack.psp.simulator import PspSimulator, RouteHandler

__all__ = ["DISPUTED_TOKEN", "DisputeBook", "dispute_fee"]
DISPUTE_REASON = "fraudulent"
# Minor units per currency; any other currency: 15 major units in its own exponent.
DISPUTE_FEES = {"USD": 1500, "CAD": 1500, "EUR": 2000, "GBP": 2000, "AUD": 2500, "JPY": 2000}
_EXPONENT_0 = frozenset({"JPY", "KRW", "CLP", "ISK", "UGX", "VND", "XAF", "XOF"})
_EXPONENT_3 = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def dispute_fee(currency: str) -> int:
    if currency in DISPUTE_FEES:
        return DISPUTE_FEES[currency]
    minor_per_major = 1 if currency in _EXPONENT_0 else 1000 if currency in _EXPONENT_3 else 100
    return 15 * minor_per_major


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Dispute:
    id: str
    charge: str
    merchant_reference: str  # the disputed charge's (the merchant's payment order)
    amount: int
    fee: int
    currency: str
    reason: str
    status: str  # needs_response | won | lost
    created: int
    object: str = "dispute"

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DisputeMovement:
    """One movement of the merchant's balance by a dispute: a settlement row of the day it happened."""

    type: str  # dispute (amount + fee taken) | dispute_reversal (amount given back)
    dispute_id: str
    charge: str
    merchant_reference: str
    amount: int
    fee: int
    currency: str
    created_at: str


def _error(status: int, code: str, message: str, **extra: Any) -> Reply:
    return Reply(status, {"error": {"type": "invalid_request_error", "code": code, "message": message, **extra}})


class DisputeBook:
    def __init__(self, webhooks: WebhookSender, *, open_delay: float = 3.0) -> None:
        self.webhooks = webhooks
        self.open_delay = open_delay
        self._disputes: dict[str, Dispute] = {}
        self.movements: list[DisputeMovement] = []
        self._lock = threading.Lock()

    def __call__(self, charge: Charge) -> None:
        """A tok_createDispute charge succeeded: its buyer disputes it a few seconds later."""
        threading.Timer(self.open_delay, self.open, args=(charge,)).start()

    def open(self, charge: Charge) -> Dispute:
        dispute = Dispute(
            id=f"dp_{uuid.uuid4().hex[:24]}",
            charge=charge.id,
            merchant_reference=charge.merchant_reference,
            amount=charge.amount,
            fee=dispute_fee(charge.currency),
            currency=charge.currency,
            reason=DISPUTE_REASON,
            status="needs_response",
            created=int(time.time()),
        )
        with self._lock:
            self._disputes[dispute.id] = dispute
            self._move("dispute", dispute, amount=dispute.amount, fee=dispute.fee)
            public = dispute.public()
        # Not final: the close is. With the reorder fault on, the opening arrives after a quick close.
        self.webhooks.emit("charge.dispute.created", public, final=False)
        return dispute

    def _move(self, kind: str, dispute: Dispute, *, amount: int, fee: int) -> None:
        self.movements.append(
            DisputeMovement(
                type=kind,
                dispute_id=dispute.id,
                charge=dispute.charge,
                merchant_reference=dispute.merchant_reference,
                amount=amount,
                fee=fee,
                currency=dispute.currency,
                created_at=_now_iso(),
            )
        )

    def close(self, dispute_id: str, request: dict[str, Any]) -> Reply:
        outcome = request.get("outcome")
        if outcome not in ("won", "lost"):
            return _error(400, "parameter_invalid", "outcome must be won or lost.", param="outcome")
        with self._lock:
            dispute = self._disputes.get(dispute_id)
            if dispute is None:
                return _error(404, "resource_missing", "No such dispute.")
            if dispute.status == outcome:
                return Reply(200, dispute.public())  # closing again the same way changes nothing
            if dispute.status != "needs_response":
                return _error(400, "dispute_already_closed", f"The dispute is already {dispute.status}.")
            dispute.status = outcome
            if outcome == "won":
                self._move("dispute_reversal", dispute, amount=dispute.amount, fee=0)
            public = dispute.public()
        self.webhooks.emit("charge.dispute.closed", public)
        return Reply(200, public)

    def disputed(self, charge_id: str) -> bool:
        with self._lock:
            return any(d.charge == charge_id for d in self._disputes.values())

    def get(self, dispute_id: str) -> Dispute | None:
        with self._lock:
            return self._disputes.get(dispute_id)

    def find(self, *, merchant_reference: str | None = None) -> list[Dispute]:
        with self._lock:
            disputes = list(self._disputes.values())
        if merchant_reference is not None:
            disputes = [d for d in disputes if d.merchant_reference == merchant_reference]
        return sorted(disputes, key=lambda d: (d.created, d.id))


# Routes (registered in simulator.py's route list)


def close_dispute(sim: PspSimulator, match: re.Match[str], _: Any, __: dict[str, str], body: bytes) -> Reply:
    request = json_body(body)
    if request is None:
        return _error(400, "body_invalid", "Body must be a JSON object.")
    return sim.disputes.close(match.group("dispute_id"), request)


def get_dispute(sim: PspSimulator, match: re.Match[str], *_: Any) -> Reply:
    dispute = sim.disputes.get(match.group("dispute_id"))
    if dispute is None:
        return _error(404, "resource_missing", "No such dispute.")
    return Reply(200, dispute.public())


def list_disputes(sim: PspSimulator, _: re.Match[str], query: dict[str, list[str]], *__: Any) -> Reply:
    reference = query.get("merchant_reference", [None])[-1]
    return Reply(200, {"object": "list", "data": [d.public() for d in sim.disputes.find(merchant_reference=reference)]})


ROUTES: list[tuple[str, re.Pattern[str], RouteHandler]] = [
    ("POST", re.compile(r"^/v1/disputes/(?P<dispute_id>dp_\w+)/close$"), close_dispute),
    ("GET", re.compile(r"^/v1/disputes/(?P<dispute_id>dp_\w+)$"), get_dispute),
    ("GET", re.compile(r"^/v1/disputes$"), list_disputes),
]
