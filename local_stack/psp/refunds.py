"""The simulated PSP's refunds (Stripe-style): `POST /v1/refunds {"charge": "<psp_reference>", "amount",
"merchant_reference"}` with Idempotency-Key = the merchant's refund id. Several partial refunds per charge;
their sum (failed ones left out) never exceeds what was charged; only a succeeded charge can be refunded.

A refund of a `tok_refundFail` charge is answered `pending`, announced by a signed `refund.created`
webhook, and fails a moment later (`refund.failed`, code `expired_or_canceled_card`); every other refund
succeeds at once. `POST /_sim/refunds/{id}/fail` fails a succeeded refund afterwards (as a card network
may), with a `refund.failed` webhook. Every refund is kept, with its time, for the day's settlement file."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from local_stack.psp.charges import ChargeBook, Reply, json_body
from local_stack.psp.webhooks import WebhookSender

if TYPE_CHECKING:
    from local_stack.psp.simulator import PspSimulator, RouteHandler

REFUND_FAILING_TOKEN = "tok_refundFail"
REFUND_FAILURE_CODE = "expired_or_canceled_card"


@dataclass
class Refund:
    id: str
    charge: str
    amount: int
    currency: str
    merchant_reference: str
    idempotency_key: str
    status: str  # pending | succeeded | failed
    failure_code: str | None
    created: int
    created_at: str
    object: str = "refund"

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("idempotency_key")
        return data


def _error(status: int, code: str, message: str, **extra: Any) -> Reply:
    return Reply(status, {"error": {"type": "invalid_request_error", "code": code, "message": message, **extra}})


class RefundBook:
    def __init__(self, charges: ChargeBook, webhooks: WebhookSender, *, fail_delay: float = 1.0) -> None:
        self.charges = charges
        self.webhooks = webhooks
        self.fail_delay = fail_delay
        self._refunds: dict[str, Refund] = {}
        self._keys: dict[str, tuple[dict[str, Any], Reply]] = {}
        # Whether the buyer disputed a charge (the simulator wires its dispute book in): the dispute returns
        # the buyer's money, so a refund of it would pay them twice.
        self.disputed: Callable[[str], bool] = lambda charge_id: False
        self._lock = threading.Lock()

    def create(self, idempotency_key: str | None, request: dict[str, Any]) -> Reply:
        if not idempotency_key:
            return _error(400, "idempotency_key_required", "Idempotency-Key is required.")
        amount = request.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return _error(400, "parameter_invalid", "amount must be a positive integer.", param="amount")
        if not isinstance(request.get("charge"), str) or not request["charge"]:
            return _error(400, "parameter_missing", "charge is required.", param="charge")
        reference = request.get("merchant_reference", idempotency_key)
        if not isinstance(reference, str) or not reference:
            return _error(400, "parameter_invalid", "merchant_reference must be a string.", param="merchant_reference")
        fingerprint = {"charge": request["charge"], "amount": amount, "merchant_reference": reference}
        with self._lock:
            known = self._keys.get(idempotency_key)
            if known is not None:
                if known[0] != fingerprint:
                    return _error(400, "idempotency_key_in_use", "Keys can only be reused with the same parameters.")
                return Reply(known[1].status, known[1].body)
            reply, refund = self._refund(idempotency_key, fingerprint["charge"], amount, reference)
            if reply.status == 200:  # refusals are not stored: the same key may be retried once they no longer apply
                self._keys[idempotency_key] = (fingerprint, reply)
        if refund is not None and refund.status == "pending":
            self.webhooks.emit("refund.created", refund.public(), final=False)
            threading.Timer(self.fail_delay, self.fail, args=(refund.id,)).start()
        return Reply(reply.status, reply.body)

    def _refund(self, idempotency_key: str, charge_id: str, amount: int, reference: str) -> tuple[Reply, Refund | None]:
        charge = self.charges.get(charge_id)
        if charge is None:
            return _error(404, "resource_missing", f"No such charge: {charge_id}", param="charge"), None
        if charge.status != "succeeded":
            return _error(400, "charge_not_refundable", f"The charge is {charge.status}.", param="charge"), None
        if self.disputed(charge_id):
            return _error(400, "charge_disputed", "The charge is disputed: the dispute decides.", param="charge"), None
        refunded = sum(r.amount for r in self._refunds.values() if r.charge == charge_id and r.status != "failed")
        if refunded + amount > charge.amount:
            left = charge.amount - refunded
            message = f"Refund amount {amount} is greater than what is left of the charge ({left})."
            return _error(400, "amount_too_large", message, param="amount"), None
        now = datetime.now(UTC)
        refund = Refund(
            id=f"re_{uuid.uuid4().hex[:24]}",
            charge=charge_id,
            amount=amount,
            currency=charge.currency,
            merchant_reference=reference,
            idempotency_key=idempotency_key,
            status="pending" if charge.payment_method == REFUND_FAILING_TOKEN else "succeeded",
            failure_code=None,
            created=int(now.timestamp()),
            created_at=now.isoformat().replace("+00:00", "Z"),
        )
        self._refunds[refund.id] = refund
        return Reply(200, refund.public()), refund

    def fail(self, refund_id: str) -> Reply:
        """The refund fails (a pending one, or a succeeded one afterwards), announced by refund.failed."""
        with self._lock:
            refund = self._refunds.get(refund_id)
            if refund is None:
                return _error(404, "resource_missing", f"No such refund: {refund_id}")
            if refund.status == "failed":
                return Reply(200, refund.public())
            refund.status, refund.failure_code = "failed", REFUND_FAILURE_CODE
            public = refund.public()
        self.webhooks.emit("refund.failed", public)
        return Reply(200, public)

    def find(self, *, charge: str | None = None, merchant_reference: str | None = None) -> list[Refund]:
        with self._lock:
            refunds = list(self._refunds.values())
        return sorted(
            (
                r
                for r in refunds
                if (charge is None or r.charge == charge)
                and (merchant_reference is None or r.merchant_reference == merchant_reference)
            ),
            key=lambda r: (r.created, r.id),
        )


def create_refund(sim: PspSimulator, _: re.Match[str], __: Any, headers: dict[str, str], body: bytes) -> Reply:
    request = json_body(body)
    if request is None:
        return _error(400, "body_invalid", "Body must be a JSON object.")
    return sim.refunds.create(headers.get("idempotency-key"), request)


def list_refunds(sim: PspSimulator, _: re.Match[str], query: dict[str, list[str]], *__: Any) -> Reply:
    found = sim.refunds.find(
        charge=query.get("charge", [None])[-1], merchant_reference=query.get("merchant_reference", [None])[-1]
    )
    return Reply(200, {"object": "list", "data": [r.public() for r in found]})


def fail_refund(sim: PspSimulator, match: re.Match[str], *_: Any) -> Reply:
    return sim.refunds.fail(match.group("refund_id"))


ROUTES: list[tuple[str, re.Pattern[str], RouteHandler]] = [
    ("POST", re.compile(r"^/v1/refunds$"), create_refund),
    ("GET", re.compile(r"^/v1/refunds$"), list_refunds),
    ("POST", re.compile(r"^/_sim/refunds/(?P<refund_id>re_\w+)/fail$"), fail_refund),
]
