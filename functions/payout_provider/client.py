"""The one HTTP adapter for the payout provider (Tipalti-style: payees, then payments to them). A payout
first makes sure the payee exists - one payee per seller *and payout-account version*, so a later change
of account makes a new payee and can never redirect this payout - then creates the payment with the
payout's id as its Idempotency-Key and reference. Both calls are idempotent, so a retry after a lost
response pays once."""

from __future__ import annotations

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
    """The provider's payee for one version of a seller's payout account (immutable once created)."""
    return f"{seller_id}.v{account_version}"


def payee_body(account: BankAccount) -> dict[str, Any]:
    return {
        "name": account.account_holder_name,
        "country": account.country,
        "currency": account.currency,
        **account.numbers.model_dump(exclude_none=True),
    }


def _payout_result(payment: dict[str, Any]) -> PayoutResult | None:
    status = PAYMENT_STATUSES.get(str(payment.get("status")))
    if status is None:
        return None
    reference, code = payment.get("id"), payment.get("failure_code")
    return PayoutResult(
        status,
        reference if isinstance(reference, str) and reference else None,
        code if isinstance(code, str) and code else None,
    )


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
        """Pay `amount` to the payee `payee` (made from `destination` if new); idempotency key: the payout id."""
        status, payload = self._send("PUT", f"/payouts/v1/payees/{quote(payee, safe='')}", body=payee_body(destination))
        if status != 200:
            code = str(refusal(payload).get("code", "payee_refused"))
            # Our payee ids never change their account, and the account was checked when the seller gave it:
            # a refusal here means the provider and we disagree. The payout fails (its money goes back).
            report_unknown_refusal("payee", status, code)
            return PayoutResult("failed", None, code)
        body = {"payee_id": payee, "amount": amount, "currency": currency, "reference": idempotency_key}
        status, payload = self._send("POST", "/payouts/v1/payments", body=body, idempotency_key=idempotency_key)
        if status == 200:
            result = _payout_result(payload)
            if result is None:
                raise PayoutProviderUnavailable(f"payout provider answered a payment status {payload.get('status')!r}")
            return result
        if 400 <= status < 500:
            refused = refusal(payload)
            code = str(refused.get("code", "payout_refused"))
            if status != 402 and code not in KNOWN_PAYMENT_REFUSALS:  # 402: the bank refuses the account
                report_unknown_refusal("payout", status, code)
            payment = refused.get("payment")
            return PayoutResult("failed", payment if isinstance(payment, str) else None, code)
        raise PayoutProviderUnavailable(f"payout provider answered {status}")
