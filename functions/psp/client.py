"""The one HTTP adapter for the PSP (Stripe-style): charges, refunds, payouts, and lookups by idempotency
key. Every request carries the API key as a bearer token, read through one credential provider (the
Secrets Manager secret, read lazily and cached). Transient failures are retried with exponential backoff
and jitter, always with the same Idempotency-Key, so a lost response can never become a second charge,
refund or payout."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import urllib3
from aws_lambda_powertools.metrics import MetricUnit
from urllib3.util import Retry, Timeout

from functions.common.observability import logger, metrics
from functions.common.secrets import SecretValue
from functions.psp.models import ChargeResult, PayoutResult, PspBusy, PspUnavailable, RefundResult, refund_result
from functions.psp.settings import PspCallBudget, PspSettings
from functions.sellers.models import BankAccount


def retrying_pool(budget: PspCallBudget, *, pool_size: int) -> urllib3.PoolManager:
    """HTTP to the PSP: a timeout per attempt (connect and read together), and retries with exponential
    backoff and jitter on transient failures (connection errors, timeouts, 429 and 5xx) only. Retry-After
    is not honoured: a PSP asking for more time gets it from the queue's backoff, and the call stays within
    its budget (PspCallBudget)."""
    retry = Retry(
        total=budget.max_retries,
        connect=budget.max_retries,
        read=budget.max_retries,
        status=budget.max_retries,
        backoff_factor=budget.backoff_factor,
        backoff_jitter=budget.backoff_jitter,
        backoff_max=budget.backoff_max,
        # Safe for POST only because every request carries an idempotency key; GETs are safe anyway.
        allowed_methods=None,
        status_forcelist=(429, 500, 502, 503, 504),
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    # One connection per concurrent record of a batch, kept for reuse.
    return urllib3.PoolManager(
        retries=retry, timeout=Timeout(total=budget.timeout_seconds), maxsize=pool_size, block=False
    )


def json_object(data: bytes) -> dict[str, Any]:
    """A PSP response body as a JSON object ({} if it is not one)."""
    try:
        parsed = json.loads(data or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _refusal(payload: dict[str, Any]) -> dict[str, Any]:
    error = payload.get("error")
    return error if isinstance(error, dict) else {}


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


class PspClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: Callable[[], str],
        timeout_seconds: float,
        max_retries: int,
        backoff_factor: float = 0.2,
        backoff_jitter: float = 0.2,
        backoff_max: float = 2.0,
        pool_size: int = 10,
    ) -> None:
        """`api_key`: returns the PSP API key, called per request so a cached, rotated secret is picked up."""
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.budget = PspCallBudget(
            timeout_seconds=timeout_seconds,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_jitter,
            backoff_max=backoff_max,
        )
        self._http = retrying_pool(self.budget, pool_size=pool_size)

    @classmethod
    def from_settings(cls, settings: PspSettings) -> PspClient:
        """The client every PSP caller uses: its key read from Secrets Manager on first use, not here."""
        budget = settings.psp_call_budget
        return cls(
            settings.psp_base_url,
            api_key=SecretValue(settings.psp_api_key_secret),
            timeout_seconds=budget.timeout_seconds,
            max_retries=budget.max_retries,
            backoff_factor=budget.backoff_factor,
            backoff_jitter=budget.backoff_jitter,
            backoff_max=budget.backoff_max,
        )

    def _send(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, idempotency_key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """The PSP's status and JSON body; PspUnavailable when it gave no usable answer."""
        headers = {"Authorization": f"Bearer {self._api_key()}", "Accept": "application/json"}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body).encode()
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        try:
            response = self._http.request(method, f"{self.base_url}{path}", body=payload, headers=headers)
        except urllib3.exceptions.HTTPError as error:
            raise PspUnavailable(f"PSP unreachable: {type(error).__name__}") from error
        if response.status in (401, 403):
            # Our credentials, not the buyer's card or the seller's account: never fail the work for it;
            # retry (and alarm) until the key is fixed.
            raise PspUnavailable(f"PSP refused our API key ({response.status})")
        if response.status == 409:
            raise PspBusy("PSP answered 409: a request with this idempotency key is in flight")
        if response.status >= 500 or response.status == 429:
            raise PspUnavailable(f"PSP answered {response.status}")
        return response.status, json_object(response.data)

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

    def create_payout(
        self, *, idempotency_key: str, amount: int, currency: str, destination: BankAccount
    ) -> PayoutResult:
        body = {
            "amount": amount,
            "currency": currency,
            "destination": destination.as_psp_destination(),
            "merchant_reference": idempotency_key,
        }
        status, payload = self._send("POST", "/v1/payouts", body=body, idempotency_key=idempotency_key)
        if status == 200:
            return PayoutResult(payload["status"], payload.get("id"), payload.get("failure_code"))
        if 400 <= status < 500:
            refusal = _refusal(payload)
            code = str(refusal.get("code", "psp_payout_refused"))
            if status != 402:  # 402: the PSP's documented refusal of the destination
                report_unknown_refusal("payout", status, code)
            return PayoutResult("failed", refusal.get("payout"), code)
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
