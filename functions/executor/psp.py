"""HTTP adapter for the PSP (Stripe-style). Transient failures are retried with exponential backoff
and jitter, always with the same Idempotency-Key, so a lost response can never become a second charge."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import urllib3
from urllib3.util import Retry, Timeout

ChargeStatus = Literal["succeeded", "pending", "failed"]


@dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    psp_reference: str | None
    failure_code: str | None = None


class PspUnavailable(Exception):
    """The PSP could not give an answer (after retries): the order must be retried later, not failed."""


def retrying_pool(timeout_seconds: float, max_retries: int) -> urllib3.PoolManager:
    """HTTP to the PSP: timeouts, and retries with exponential backoff and jitter on transient failures
    (connection errors, timeouts, 429 and 5xx) only."""
    retry = Retry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        backoff_factor=0.2,
        backoff_jitter=0.2,
        backoff_max=5,
        # Safe for POST only because every request carries an idempotency key; GETs are safe anyway.
        allowed_methods=None,
        status_forcelist=(429, 500, 502, 503, 504),
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    return urllib3.PoolManager(retries=retry, timeout=Timeout(connect=timeout_seconds, read=timeout_seconds))


class PspClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float,
        max_retries: int,
        api_key: Callable[[], str] | None = None,
    ) -> None:
        """`api_key`: returns the PSP API key (sent as a bearer token), called per request so a cached,
        rotated secret is picked up; None sends no credentials (a PSP that does not need them)."""
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._http = retrying_pool(timeout_seconds, max_retries)

    def charge(
        self, *, idempotency_key: str, amount: int, currency: str, payment_method: str, merchant_reference: str
    ) -> ChargeResult:
        body = {
            "amount": amount,
            "currency": currency,
            "payment_method": payment_method,
            "merchant_reference": merchant_reference,
        }
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key()}"
        try:
            response = self._http.request(
                "POST", f"{self.base_url}/v1/charges", body=json.dumps(body).encode(), headers=headers
            )
        except urllib3.exceptions.HTTPError as error:
            raise PspUnavailable(f"PSP unreachable: {type(error).__name__}") from error
        payload = json_object(response.data)
        if response.status == 200:
            return ChargeResult(
                status=payload["status"], psp_reference=payload["id"], failure_code=payload.get("failure_code")
            )
        if response.status == 402:  # a decline: final, never retried
            decline = payload.get("error", {})
            return ChargeResult(
                status="failed", psp_reference=decline.get("charge"), failure_code=decline.get("code", "card_declined")
            )
        if response.status in (401, 403):
            # Our credentials, not the buyer's card: never fail the order for it; retry (and alarm) until
            # the key is fixed.
            raise PspUnavailable(f"PSP refused our API key ({response.status})")
        if 400 <= response.status < 500 and response.status not in (409, 429):
            # The PSP refused the request itself: retrying the same request cannot succeed.
            refusal = payload.get("error", {})
            return ChargeResult(
                status="failed", psp_reference=None, failure_code=str(refusal.get("code", "psp_invalid_request"))
            )
        raise PspUnavailable(f"PSP answered {response.status}")


def json_object(data: bytes) -> dict[str, Any]:
    """A PSP response body as a JSON object ({} if it is not one)."""
    try:
        parsed = json.loads(data or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
