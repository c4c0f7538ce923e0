"""The one HTTP adapter for the payout provider (Tipalti-style: payees, then payments to them).

A payout is paid once, whatever happens between attempts:
- it first **asks** whether the provider already made a payment for it (by reference, our payout id) and
  adopts that one: a retry after a lost answer, a redriven message, or a retry after the provider forgot
  the Idempotency-Key (keys expire; references do not) never pays again;
- otherwise it makes sure the payee exists - one per seller *and payout-account version*, so a later
  change of account makes a new payee and can never redirect this payout - and creates the payment with the
  payout's id as its Idempotency-Key and reference;
- a refusal is asked about again before it fails the payout: a refusal of a repeated request whose first
  attempt did pay adopts that payment. Only a refusal with no payment behind it fails the payout (its money
  goes back to the seller's wallet).
An answer that does not describe what we asked for (another reference, amount or currency, no id) is no
answer: the payout is retried, never decided on it."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from functions.payout_provider.models import (
    PAYMENT_STATUSES,
    PayoutProviderBusy,
    PayoutProviderUnavailable,
    PayoutResult,
)
from functions.payout_provider.settings import PayoutProviderSettings
from functions.psp.client import report_unknown_refusal
from functions.psp.http import JsonApiClient, json_object, refusal
from functions.sellers.models import BankAccount

PAYEE_CONFLICT = "payee_conflict"
# The provider's documented refusals of a payment besides its 402 (an account the bank refuses).
KNOWN_PAYMENT_REFUSALS = frozenset({"payee_not_found", "currency_mismatch"})


def payee_id(seller_id: str, account_version: int) -> str:
    """The provider's payee for one version of a seller's payout account (immutable once created). Payout
    providers take letters and digits only, at most 64 (Tipalti's payee ids): a digest of both, never two
    sellers' or versions' alike."""
    digest = hashlib.sha256(f"{seller_id}\x00{account_version}".encode()).hexdigest()
    return f"p{digest[:40]}"


def payee_body(account: BankAccount) -> dict[str, Any]:
    return {
        "name": account.account_holder_name,
        "country": account.country,
        "currency": account.currency,
        **account.numbers.model_dump(exclude_none=True),
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class PayoutProviderClient(JsonApiClient):
    service = "payout provider"
    unavailable = PayoutProviderUnavailable
    busy = PayoutProviderBusy

    @classmethod
    def from_settings(cls, settings: PayoutProviderSettings) -> PayoutProviderClient:
        return cls.with_secret_key(
            settings.payout_provider_url, settings.payout_provider_api_key_secret, settings.call_budget
        )

    def busy_on_conflict(self, data: bytes) -> bool:
        # A payee that exists with other details is a refusal to read, not a request in flight.
        return refusal(json_object(data)).get("code") != PAYEE_CONFLICT

    def create_payout(
        self, *, idempotency_key: str, amount: int, currency: str, destination: BankAccount, payee: str
    ) -> PayoutResult:
        """Pay `amount` to the payee `payee` (made from `destination` if new), once: the payout id is both
        the Idempotency-Key and the reference the provider is asked about first."""
        expected = {"reference": idempotency_key, "amount": amount, "currency": currency}
        made = self.payment_for(idempotency_key, expected)
        if made is not None:
            return made
        status, payload = self._send("PUT", f"/payouts/v1/payees/{quote(payee, safe='')}", body=payee_body(destination))
        if status != 200:
            # Our payee ids never change their account, and the account was checked when the seller gave it:
            # a refusal here means the provider and we disagree.
            code = str(refusal(payload).get("code", "payee_refused"))
            report_unknown_refusal("payee", status, code)
            return self._refused(expected, None, code)
        body = {"payee_id": payee, **expected}
        status, payload = self._send("POST", "/payouts/v1/payments", body=body, idempotency_key=idempotency_key)
        if status == 200:
            return self._result(payload, expected)
        if 400 <= status < 500:
            refused = refusal(payload)
            code = str(refused.get("code", "payout_refused"))
            if status != 402 and code not in KNOWN_PAYMENT_REFUSALS:  # 402: the bank refuses the account
                report_unknown_refusal("payout", status, code)
            return self._refused(expected, _text(refused.get("payment")), code)
        raise PayoutProviderUnavailable(f"payout provider answered {status}")

    def payment_for(self, reference: str, expected: dict[str, Any]) -> PayoutResult | None:
        """What the provider made for our payout (a lookup, never a payment): None if it made none."""
        status, payload = self._send("GET", f"/payouts/v1/payments?reference={quote(reference, safe='')}")
        data = payload.get("data")
        if status != 200 or not isinstance(data, list):
            raise PayoutProviderUnavailable(f"payout provider answered {status} to a payment lookup")
        found = [p for p in data if isinstance(p, dict) and p.get("reference") == reference]
        if len(found) > 1:  # one reference, one payment: anything else is for a person to look into
            raise PayoutProviderUnavailable(f"payout provider holds {len(found)} payments for one payout")
        return self._result(found[0], expected) if found else None

    def _refused(self, expected: dict[str, Any], payment: str | None, code: str) -> PayoutResult:
        """A refusal fails the payout only if no earlier attempt made a payment for it."""
        made = self.payment_for(expected["reference"], expected)
        if made is not None and made.status != "failed":
            return made
        return PayoutResult("failed", payment, code)

    @staticmethod
    def _result(payment: dict[str, Any], expected: dict[str, Any]) -> PayoutResult:
        """Our reading of the provider's payment, checked against what we asked for."""
        payment_id = _text(payment.get("id"))
        asked = {name: payment.get(name) for name in expected}
        if payment_id is None or asked != expected:
            raise PayoutProviderUnavailable("payout provider answered a payment that is not the one asked for")
        # A status we do not know (deferred, pending approval) is a payment on its way: its verdict comes by
        # webhook, as a submitted one's does.
        status = PAYMENT_STATUSES.get(str(payment.get("status")), "in_transit")
        return PayoutResult(status, payment_id, _text(payment.get("failure_code")))
