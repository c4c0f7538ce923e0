"""The simulated PSP's charge book: Stripe-style idempotency keys and the contract's test tokens."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

SUCCEEDING_TOKENS = frozenset({"tok_visa", "tok_mastercard", "tok_amex"})
DECLINES = {"tok_chargeDeclined": "card_declined", "tok_insufficient_funds": "insufficient_funds"}
TRANSIENT_FAILURES_BEFORE_SUCCESS = 2  # tok_processing_error
DISPUTED_TOKEN = "tok_createDispute"  # succeeds, then is disputed (local_stack/psp/disputes.py)


@dataclass
class Charge:
    id: str
    amount: int
    currency: str
    payment_method: str
    merchant_reference: str
    idempotency_key: str
    status: str  # succeeded | pending | failed
    failure_code: str | None
    created: int
    created_at: str
    object: str = "charge"

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("idempotency_key")
        return data


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    delay_seconds: float = 0.0  # the reply is held back this long (tok_timeout: "response lost")


@dataclass
class _KeyState:
    request: dict[str, Any]
    attempts: int = 0
    reply: Reply | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def json_body(body: bytes) -> dict[str, Any] | None:
    """A request body as a JSON object; None if it is not one."""
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _error(status: int, error_type: str, code: str, message: str, **extra: Any) -> Reply:
    return Reply(status, {"error": {"type": error_type, "code": code, "message": message, **extra}})


class ChargeBook:
    def __init__(self, *, lost_response_delay: float = 5.0) -> None:
        self.lost_response_delay = lost_response_delay
        self._charges: dict[str, Charge] = {}
        self._keys: dict[str, _KeyState] = {}
        self._lock = threading.Lock()
        # Called with each new pending charge (tok_pending): the simulator settles it later, by webhook.
        self.on_pending: Callable[[Charge], None] | None = None
        # Called with each tok_createDispute charge: the simulator opens a dispute on it later, by webhook.
        self.on_disputed: Callable[[Charge], None] | None = None
        # Injected faults (the soak's seeded plan): for each charge request, "error" (a 500 before
        # anything is charged), "lost" (charged, but the reply is held past the client's timeout) or None.
        self.fault: Callable[[], str | None] | None = None

    def create(self, idempotency_key: str | None, request: dict[str, Any]) -> Reply:
        if not idempotency_key:
            return _error(400, "invalid_request_error", "idempotency_key_required", "Idempotency-Key is required.")
        problem = _validate(request)
        if problem is not None:
            return problem
        fingerprint = {k: request[k] for k in ("amount", "currency", "payment_method", "merchant_reference")}
        with self._lock:
            state = self._keys.setdefault(idempotency_key, _KeyState(request=fingerprint))
        with state.lock:  # concurrent retries with one key wait for the first and get its reply
            if state.request != fingerprint:
                return _error(
                    400,
                    "idempotency_error",
                    "idempotency_key_in_use",
                    "Keys for idempotent requests can only be used with the same parameters.",
                )
            fault = self.fault() if self.fault is not None else None
            if fault == "error":
                return _error(500, "api_error", "processing_error", "An error occurred while processing the charge.")
            state.attempts += 1
            lost_delay = self.lost_response_delay if fault == "lost" else 0.0
            if state.reply is not None:
                return Reply(state.reply.status, state.reply.body, delay_seconds=lost_delay)
            token = fingerprint["payment_method"]
            if token == "tok_processing_error" and state.attempts <= TRANSIENT_FAILURES_BEFORE_SUCCESS:
                return _error(500, "api_error", "processing_error", "An error occurred while processing the charge.")
            state.reply = self._charge(idempotency_key, fingerprint)
            if (token == "tok_timeout" and state.attempts == 1) or fault == "lost":
                return Reply(state.reply.status, state.reply.body, delay_seconds=self.lost_response_delay)
            return state.reply

    def _charge(self, idempotency_key: str, request: dict[str, Any]) -> Reply:
        token = request["payment_method"]
        known = (
            token in SUCCEEDING_TOKENS
            or token in DECLINES
            or token in ("tok_processing_error", "tok_timeout", "tok_pending", "tok_refundFail")
            or token == DISPUTED_TOKEN
        )
        if not known:
            return _error(400, "invalid_request_error", "token_invalid", f"No such token: {token}")
        failure = DECLINES.get(token)
        now = datetime.now(UTC)
        charge = Charge(
            id=f"ch_{uuid.uuid4().hex[:24]}",
            amount=request["amount"],
            currency=request["currency"],
            payment_method=token,
            merchant_reference=request["merchant_reference"],
            idempotency_key=idempotency_key,
            status="failed" if failure else ("pending" if token == "tok_pending" else "succeeded"),
            failure_code=failure,
            created=int(time.time()),
            created_at=now.isoformat().replace("+00:00", "Z"),
        )
        with self._lock:
            self._charges[charge.id] = charge
        if failure:
            return _error(402, "card_error", failure, "The card was declined.", charge=charge.id)
        if charge.status == "pending" and self.on_pending is not None:
            self.on_pending(charge)
        if token == DISPUTED_TOKEN and self.on_disputed is not None:
            self.on_disputed(charge)
        return Reply(200, charge.public())

    def find(self, *, merchant_reference: str | None = None) -> list[Charge]:
        with self._lock:
            charges = list(self._charges.values())
        if merchant_reference is not None:
            charges = [c for c in charges if c.merchant_reference == merchant_reference]
        return sorted(charges, key=lambda c: (c.created, c.id))

    def get(self, charge_id: str) -> Charge | None:
        with self._lock:
            return self._charges.get(charge_id)

    def by_idempotency_key(self, key: str) -> Charge | None:
        with self._lock:
            return next((c for c in self._charges.values() if c.idempotency_key == key), None)

    def all(self) -> list[Charge]:
        return self.find()


def _validate(request: dict[str, Any]) -> Reply | None:
    amount = request.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        return _error(
            400, "invalid_request_error", "parameter_invalid", "amount must be a positive integer.", param="amount"
        )
    for name in ("currency", "payment_method", "merchant_reference"):
        if not isinstance(request.get(name), str) or not request[name]:
            return _error(400, "invalid_request_error", "parameter_missing", f"{name} is required.", param=name)
    return None
