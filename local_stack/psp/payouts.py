"""The simulated PSP's payouts (Stripe-style, idempotency keys) and what settles asynchronously:
payouts go in_transit and are paid (or fail) a moment later, pending charges settle, each announced
by a signed webhook. Also the lookups by idempotency key that let a merchant ask "what did you do
with this key?" without repeating the request.

A payout's `destination` is a bank account object (`account_holder_name`, `country`, `currency`, and an
`iban` or a US `account_number` with `routing_number`); the simulator keeps only its last four characters.
Test accounts (local_stack/psp/test_accounts.py), in the manner of a PSP's test mode:
- account number `000111111113` or IBAN `DE62370400440532013001`: goes in transit, then fails with
  `account_closed`;
- account number `000222222227` or IBAN `DE35370400440532013002`: refused at once (402 `invalid_account`);
- any other account is paid."""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from local_stack.payout_provider.bank_accounts import InvalidBankAccount, bank_account_number
from local_stack.psp.charges import Charge, Reply, json_body
from local_stack.psp.test_accounts import CLOSED_ACCOUNTS, REFUSED_ACCOUNTS
from local_stack.psp.webhooks import WebhookSender

if TYPE_CHECKING:
    from local_stack.psp.simulator import PspSimulator, RouteHandler

_DESTINATION_TEXT = ("account_holder_name", "country", "currency")


@dataclass
class Payout:
    id: str
    amount: int
    currency: str
    destination: dict[str, str]  # the bank account as shown: holder, country, currency, last4
    merchant_reference: str
    idempotency_key: str
    status: str  # in_transit | paid | failed
    failure_code: str | None
    created: int
    object: str = "payout"

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("idempotency_key")
        return data


def _error(status: int, code: str, message: str, **extra: Any) -> Reply:
    return Reply(status, {"error": {"type": "invalid_request_error", "code": code, "message": message, **extra}})


class PayoutBook:
    def __init__(self, webhooks: WebhookSender, *, settle_delay: float = 1.0) -> None:
        self.webhooks = webhooks
        self.settle_delay = settle_delay
        self._payouts: dict[str, Payout] = {}
        self._keys: dict[str, tuple[dict[str, Any], Reply]] = {}
        self._lock = threading.Lock()

    def create(self, idempotency_key: str | None, request: dict[str, Any]) -> Reply:
        if not idempotency_key:
            return _error(400, "idempotency_key_required", "Idempotency-Key is required.")
        amount = request.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return _error(400, "parameter_invalid", "amount must be a positive integer.", param="amount")
        for name in ("currency", "merchant_reference"):
            if not isinstance(request.get(name), str) or not request[name]:
                return _error(400, "parameter_missing", f"{name} is required.", param=name)
        account_number = _account_number(request.get("destination"))
        if account_number is None:
            return _error(400, "parameter_invalid", "destination must be a valid bank account.", param="destination")
        if request["destination"]["currency"] != request["currency"]:
            # A bank account is paid in its own currency: a PSP refuses to convert on a payout.
            return _error(
                400, "currency_mismatch", "The payout's currency is not the bank account's.", param="currency"
            )
        fingerprint = {k: request[k] for k in ("amount", "currency", "destination", "merchant_reference")}
        with self._lock:
            known = self._keys.get(idempotency_key)
            if known is not None:
                if known[0] != fingerprint:
                    return _error(400, "idempotency_key_in_use", "Keys can only be reused with the same parameters.")
                return Reply(known[1].status, known[1].body)
            payout = Payout(
                id=f"pout_{uuid.uuid4().hex[:24]}",
                amount=amount,
                currency=fingerprint["currency"],
                destination={
                    **{k: str(request["destination"][k]) for k in _DESTINATION_TEXT},
                    "last4": account_number[-4:],
                },
                merchant_reference=fingerprint["merchant_reference"],
                idempotency_key=idempotency_key,
                status="in_transit",
                failure_code=None,
                created=int(time.time()),
            )
            if account_number in REFUSED_ACCOUNTS:
                payout.status, payout.failure_code = "failed", "invalid_account"
                reply = Reply(402, {"error": {"type": "payout_error", "code": "invalid_account", "payout": payout.id}})
            else:
                reply = Reply(200, payout.public())
            self._payouts[payout.id] = payout
            self._keys[idempotency_key] = (fingerprint, reply)
        if payout.status == "in_transit":
            self.webhooks.emit("payout.in_transit", payout.public(), final=False)
            closed = account_number in CLOSED_ACCOUNTS
            threading.Timer(self.settle_delay, self._settle, args=(payout.id, closed)).start()
        return Reply(reply.status, reply.body)

    def _settle(self, payout_id: str, closed: bool) -> None:
        with self._lock:
            payout = self._payouts[payout_id]
            if closed:
                payout.status, payout.failure_code = "failed", "account_closed"
            else:
                payout.status = "paid"
            public = payout.public()
        self.webhooks.emit(f"payout.{payout.status}", public)

    def find(self, *, merchant_reference: str | None = None) -> list[Payout]:
        with self._lock:
            payouts = list(self._payouts.values())
        if merchant_reference is not None:
            payouts = [p for p in payouts if p.merchant_reference == merchant_reference]
        return sorted(payouts, key=lambda p: (p.created, p.id))

    def by_idempotency_key(self, key: str) -> Payout | None:
        with self._lock:
            return next((p for p in self._payouts.values() if p.idempotency_key == key), None)

    def get(self, payout_id: str) -> Payout | None:
        with self._lock:
            return self._payouts.get(payout_id)


def _account_number(destination: Any) -> str | None:
    """The IBAN or account number of a valid bank account destination (its checksums checked, as a bank
    would), else None."""
    if not isinstance(destination, dict) or not all(
        isinstance(destination.get(k), str) and destination[k] for k in _DESTINATION_TEXT
    ):
        return None
    try:
        return bank_account_number(
            destination["country"],
            iban=destination.get("iban"),
            account_number=destination.get("account_number"),
            routing_number=destination.get("routing_number"),
        )
    except InvalidBankAccount:
        return None  # the PSP answers every invalid destination alike: parameter_invalid, param destination


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


# Routes (registered in simulator.py's route list)


def create_payout(sim: PspSimulator, _: re.Match[str], __: Any, headers: dict[str, str], body: bytes) -> Reply:
    request = json_body(body)
    if request is None:
        return _error(400, "body_invalid", "Body must be a JSON object.")
    return sim.payouts.create(headers.get("idempotency-key"), request)


def list_payouts(sim: PspSimulator, _: re.Match[str], query: dict[str, list[str]], *__: Any) -> Reply:
    reference = query.get("merchant_reference", [None])[-1]
    return Reply(200, {"object": "list", "data": [p.public() for p in sim.payouts.find(merchant_reference=reference)]})


def get_payout(sim: PspSimulator, match: re.Match[str], *_: Any) -> Reply:
    payout = sim.payouts.get(match.group("payout_id"))
    if payout is None:
        return _error(404, "resource_missing", "No such payout.")
    return Reply(200, payout.public())


def by_idempotency_key(sim: PspSimulator, match: re.Match[str], *_: Any) -> Reply:
    key = match.group("key")
    found: Charge | Payout | None = (
        sim.charges.by_idempotency_key(key) if match.group("kind") == "charges" else sim.payouts.by_idempotency_key(key)
    )
    if found is None:
        return _error(404, "resource_missing", "Nothing was created with this idempotency key.")
    return Reply(200, found.public())


def webhook_faults(sim: PspSimulator, _: re.Match[str], __: Any, ___: dict[str, str], body: bytes) -> Reply:
    """POST /v1/_simulator/webhooks {"drop": bool, "duplicate": bool, "reorder": bool} (test control)."""
    return Reply(200, sim.webhooks.faults.configure(json_body(body) or {}))


def list_events(sim: PspSimulator, *_: Any) -> Reply:
    return Reply(200, {"object": "list", "data": list(sim.webhooks.sent)})


ROUTES: list[tuple[str, re.Pattern[str], RouteHandler]] = [
    ("POST", re.compile(r"^/v1/payouts$"), create_payout),
    ("GET", re.compile(r"^/v1/payouts$"), list_payouts),
    ("GET", re.compile(r"^/v1/payouts/(?P<payout_id>pout_\w+)$"), get_payout),
    ("GET", re.compile(r"^/v1/(?P<kind>charges|payouts)/by_idempotency_key/(?P<key>[\w-]+)$"), by_idempotency_key),
    ("POST", re.compile(r"^/v1/_simulator/webhooks$"), webhook_faults),
    ("GET", re.compile(r"^/v1/events$"), list_events),
]
