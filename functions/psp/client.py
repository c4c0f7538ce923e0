"""The one HTTP adapter for the PSP (Stripe-style): charges, refunds, and lookups by idempotency key.
Every request carries the API key as a bearer token, read through one credential provider (the Secrets
Manager secret, read lazily and cached). Transient failures are retried with exponential backoff and
jitter, always with the same Idempotency-Key, so a lost response can never become a second charge or
refund (functions/psp/http.py). Payouts go to the payout provider (functions/payout_provider/)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.metrics import MetricUnit

from functions.common.observability import logger, metrics
from functions.psp.http import JsonApiClient
from functions.psp.http import refusal as _refusal
from functions.psp.models import ChargeResult, PspBusy, PspUnavailable, RefundResult, refund_result
from functions.psp.settings import PspSettings

# The 4xx refusals of a charge the PSP documents besides declines (402): a payment method it does not know.
KNOWN_CHARGE_REFUSALS = frozenset({"token_invalid"})


def report_unknown_refusal(operation: str, status: int, code: str) -> None:
    """A 4xx the PSP does not document for this call: the work fails all the same (retrying the request
    cannot help), but it means our request or the PSP changed, so it is counted and logged with its code."""
    metrics.add_metric(name="PspUnknownRefusal", unit=MetricUnit.Count, value=1)
    logger.error(
        "the PSP refused a request for a reason we do not know",
        extra={"operation": operation, "psp_status": status, "psp_code": code[:100]},
    )


class PspClient(JsonApiClient):
    service = "PSP"
    unavailable = PspUnavailable
    busy = PspBusy

    @classmethod
    def from_settings(cls, settings: PspSettings) -> PspClient:
        """The client every PSP caller uses."""
        return cls.with_secret_key(settings.psp_base_url, settings.psp_api_key_secret, settings.psp_call_budget)

    def charge(
        self, *, idempotency_key: str, amount: int, currency: str, payment_method: str, merchant_reference: str
    ) -> ChargeResult:
        body = {
            "amount": amount,
            "currency": currency,
            "payment_method": payment_method,
            "merchant_reference": merchant_reference,
        }
        status, payload = self._send("POST", "/v1/charges", body=body, idempotency_key=idempotency_key)
        if status == 200:
            return ChargeResult(
                status=payload["status"], psp_reference=payload["id"], failure_code=payload.get("failure_code")
            )
        if status == 402:  # a decline: final, never retried
            decline = _refusal(payload)
            return ChargeResult(
                status="failed", psp_reference=decline.get("charge"), failure_code=decline.get("code", "card_declined")
            )
        if 400 <= status < 500:
            # The PSP refused the request itself: retrying the same request cannot succeed.
            code = str(_refusal(payload).get("code", "psp_invalid_request"))
            if code not in KNOWN_CHARGE_REFUSALS:
                report_unknown_refusal("charge", status, code)
            return ChargeResult(status="failed", psp_reference=None, failure_code=code)
        raise PspUnavailable(f"PSP answered {status}")

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int) -> RefundResult:
        """Refund `amount` of the PSP's charge `charge_reference` (idempotency key: the refund's id)."""
        # merchant_reference: our refund id, which the PSP's refund webhooks and settlement rows carry back.
        body = {"charge": charge_reference, "amount": amount, "merchant_reference": idempotency_key}
        status, payload = self._send("POST", "/v1/refunds", body=body, idempotency_key=idempotency_key)
        if status == 200:
            return RefundResult(payload["status"], payload.get("id"), payload.get("failure_code"))
        if 400 <= status < 500:
            refusal = _refusal(payload)
            return RefundResult("failed", refusal.get("refund"), str(refusal.get("code", "psp_refund_refused")))
        raise PspUnavailable(f"PSP answered {status}")

    def _refunds(self, query: str) -> Iterator[dict[str, Any]]:
        """Every refund a PSP list answers for the query, page by page (a Stripe-style list answers at most a
        page, `has_more` saying there is another, fetched `starting_after` the last one)."""
        path = f"/v1/refunds?{query}"
        while True:
            status, payload = self._send("GET", path)
            if status != 200 or not isinstance(payload.get("data"), list):
                raise PspUnavailable(f"PSP answered {status} to a refund lookup")
            page = [refund for refund in payload["data"] if isinstance(refund, dict)]
            yield from page
            if payload.get("has_more") is not True:
                return
            if not page or not isinstance(page[-1].get("id"), str):
                raise PspUnavailable("PSP said more refunds follow but named no refund to continue after")
            path = f"/v1/refunds?{query}&starting_after={quote(page[-1]['id'])}"

    def refunded_amount(self, charge_reference: str) -> int:
        """The sum of the PSP's pending and succeeded refunds of a charge (a lookup: never a refund)."""
        return sum(
            int(refund["amount"])
            for refund in self._refunds(f"charge={quote(charge_reference)}")
            if refund.get("charge", charge_reference) == charge_reference
            and refund.get("status") in ("pending", "succeeded")
        )

    def refund_by_reference(self, merchant_reference: str) -> RefundResult | None:
        """What the PSP did with the refund we asked for under this merchant reference (our refund id; never
        a new refund): None only if no page of the PSP's answer holds it."""
        found = [
            r
            for r in self._refunds(f"merchant_reference={quote(merchant_reference)}")
            if r.get("merchant_reference") == merchant_reference
        ]
        if not found:
            return None
        if len(found) > 1:  # one idempotency key, one refund: anything else is the PSP's error to look into
            raise PspUnavailable(f"PSP holds {len(found)} refunds for {merchant_reference}")
        result = refund_result(found[0])
        if result is None:  # no verdict we know: left PENDING and reported, never guessed
            raise PspUnavailable(f"PSP refund {found[0].get('id')} has status {found[0].get('status')!r}")
        return result

    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None:
        """What the PSP did with this key (never a new charge): None if it never created a charge for it."""
        status, payload = self._send("GET", f"/v1/charges/by_idempotency_key/{idempotency_key}")
        if status == 404:
            return None
        if status != 200:
            raise PspUnavailable(f"PSP answered {status} to a charge lookup")
        return ChargeResult(
            status=payload["status"], psp_reference=payload["id"], failure_code=payload.get("failure_code")
        )
