"""The payout provider's payees (Tipalti-like): a payee is one bank account, put once under an id the
caller chooses and never changed - the same id with the same body is the same payee, another body is a
conflict (a changed account is a new payee, so a payment already made is never redirected).

The provider keeps the account's last four characters only. To recognise a repeated body it keeps a keyed
hash of the body (its key is random per simulator), and for the test accounts (local_stack/psp/
test_accounts.py) the behaviour a payment to them will have."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from local_stack.payout_provider.bank_accounts import InvalidBankAccount, bank_account_number
from local_stack.payout_provider.errors import error
from local_stack.psp.charges import Reply
from local_stack.psp.test_accounts import CLOSED_ACCOUNTS, REFUSED_ACCOUNTS

# As a real payout provider takes them (Tipalti's payee ids: no special characters or spaces, at most 64).
PAYEE_ID = re.compile(r"[A-Za-z0-9]{1,64}")
_TEXT_FIELDS = ("name", "country", "currency")
_NUMBER_FIELDS = ("iban", "account_number", "routing_number")
_FORMATS = {"country": re.compile(r"[A-Z]{2}"), "currency": re.compile(r"[A-Z]{3}")}


@dataclass(frozen=True)
class Payee:
    id: str
    name: str
    country: str
    currency: str
    last4: str
    created: int
    body_digest: str  # keyed hash of the body it was put with
    outcome: str  # what a payment to its account does: paid | closed | refused (the test accounts)
    status: str = "active"
    object: str = "payee"

    def public(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "id": self.id,
            "name": self.name,
            "country": self.country,
            "currency": self.currency,
            "last4": self.last4,
            "status": self.status,
            "created": self.created,
        }


def _outcome(number: str) -> str:
    if number in CLOSED_ACCOUNTS:
        return "closed"
    if number in REFUSED_ACCOUNTS:
        return "refused"
    return "paid"


class PayeeBook:
    def __init__(self) -> None:
        self._payees: dict[str, Payee] = {}
        self._digest_key = secrets.token_bytes(32)
        self._lock = threading.Lock()

    def put(self, payee_id: str, request: dict[str, Any]) -> Reply:
        """PUT /payouts/v1/payees/{payee_id}: create the payee, or answer the one already put with this body."""
        if not PAYEE_ID.fullmatch(payee_id):
            return error(400, "parameter_invalid", "payee_id must be 1 to 64 letters and digits.", param="payee_id")
        unknown = sorted(set(request) - {*_TEXT_FIELDS, *_NUMBER_FIELDS})
        if unknown:
            return error(400, "parameter_invalid", f"Unknown field {unknown[0]}.", param=unknown[0])
        for name in _TEXT_FIELDS:
            value = request.get(name)
            if not isinstance(value, str) or not value.strip():
                return error(400, "parameter_invalid", f"{name} is required.", param=name)
            if name in _FORMATS and not _FORMATS[name].fullmatch(value):
                return error(400, "parameter_invalid", f"{name} must be an upper-case ISO code.", param=name)
        try:
            number = bank_account_number(
                request["country"],
                iban=request.get("iban"),
                account_number=request.get("account_number"),
                routing_number=request.get("routing_number"),
            )
        except InvalidBankAccount as invalid:
            return error(400, "parameter_invalid", invalid.message, param=invalid.param)
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":")).encode()
        digest = hmac.new(self._digest_key, canonical, hashlib.sha256).hexdigest()
        with self._lock:
            known = self._payees.get(payee_id)
            if known is None:
                known = Payee(
                    id=payee_id,
                    name=request["name"],
                    country=request["country"],
                    currency=request["currency"],
                    last4=number[-4:],
                    created=int(time.time()),
                    body_digest=digest,
                    outcome=_outcome(number),
                )
                self._payees[payee_id] = known
            elif not hmac.compare_digest(known.body_digest, digest):
                return error(409, "payee_conflict", "A payee with this id exists with another body; ids are immutable.")
        return Reply(200, known.public())

    def get(self, payee_id: str) -> Payee | None:
        with self._lock:
            return self._payees.get(payee_id)

    def all(self) -> list[Payee]:
        with self._lock:
            return list(self._payees.values())
