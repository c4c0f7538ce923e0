"""The simulated PSP's refunds (Stripe-style): `POST /v1/refunds {"charge": "<psp_reference>", "amount"}`
with Idempotency-Key = the merchant's refund id. Several partial refunds per charge; their sum never
exceeds what was charged; only a succeeded charge can be refunded."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from local_stack.psp.charges import ChargeBook, Reply


@dataclass
class Refund:
    id: str
    charge: str
    amount: int
    currency: str
    idempotency_key: str
    status: str  # succeeded
    failure_code: str | None
    created: int
    object: str = "refund"

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("idempotency_key")
        return data


def _error(status: int, code: str, message: str, **extra: Any) -> Reply:
    return Reply(status, {"error": {"type": "invalid_request_error", "code": code, "message": message, **extra}})


class RefundBook:
    def __init__(self, charges: ChargeBook) -> None:
        self.charges = charges
        self._refunds: dict[str, Refund] = {}
        self._keys: dict[str, tuple[dict[str, Any], Reply]] = {}
        self._lock = threading.Lock()

    def create(self, idempotency_key: str | None, request: dict[str, Any]) -> Reply:
        if not idempotency_key:
            return _error(400, "idempotency_key_required", "Idempotency-Key is required.")
        amount = request.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return _error(400, "parameter_invalid", "amount must be a positive integer.", param="amount")
        if not isinstance(request.get("charge"), str) or not request["charge"]:
            return _error(400, "parameter_missing", "charge is required.", param="charge")
        fingerprint = {"charge": request["charge"], "amount": amount}
        with self._lock:
            known = self._keys.get(idempotency_key)
            if known is not None:
                if known[0] != fingerprint:
                    return _error(400, "idempotency_key_in_use", "Keys can only be reused with the same parameters.")
                return Reply(known[1].status, known[1].body)
            reply = self._refund(idempotency_key, fingerprint["charge"], amount)
            if reply.status == 200:  # refusals are not stored: the same key may be retried once they no longer apply
                self._keys[idempotency_key] = (fingerprint, reply)
            return Reply(reply.status, reply.body)

    def _refund(self, idempotency_key: str, charge_id: str, amount: int) -> Reply:
        charge = self.charges.get(charge_id)
        if charge is None:
            return _error(404, "resource_missing", f"No such charge: {charge_id}", param="charge")
        if charge.status != "succeeded":
            return _error(400, "charge_not_refundable", f"The charge is {charge.status}.", param="charge")
        refunded = sum(r.amount for r in self._refunds.values() if r.charge == charge_id)
        if refunded + amount > charge.amount:
            return _error(
                400,
                "amount_too_large",
                f"Refund amount {amount} is greater than what is left of the charge ({charge.amount - refunded}).",
                param="amount",
            )
        refund = Refund(
            id=f"re_{uuid.uuid4().hex[:24]}",
            charge=charge_id,
            amount=amount,
            currency=charge.currency,
            idempotency_key=idempotency_key,
            status="succeeded",
            failure_code=None,
            created=int(time.time()),
        )
        self._refunds[refund.id] = refund
        return Reply(200, refund.public())

    def find(self, *, charge: str | None = None) -> list[Refund]:
        with self._lock:
            refunds = list(self._refunds.values())
        return sorted((r for r in refunds if charge is None or r.charge == charge), key=lambda r: (r.created, r.id))
