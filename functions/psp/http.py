"""HTTP to a payment service (the PSP, the payout provider): JSON over a pooled connection, the API key as
a bearer token read per request (a cached, rotated secret is picked up), a timeout per attempt, and
retries with exponential backoff and jitter on transient failures only. Every POST carries an
Idempotency-Key, so a retried request never makes a second charge, refund or payment."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar, Self

import urllib3
from urllib3.util import Retry, Timeout

from functions.common.secrets import SecretValue
from functions.psp.models import PspBusy, PspUnavailable
from functions.psp.settings import PspCallBudget


def retrying_pool(budget: PspCallBudget, *, pool_size: int) -> urllib3.PoolManager:
    """A timeout per attempt (connect and read together), and retries with exponential backoff and jitter on
    transient failures (connection errors, timeouts, 429 and 5xx) only. Retry-After is not honoured: a
    service asking for more time gets it from the queue's backoff, and the call stays within its budget
    (PspCallBudget)."""
    retry = Retry(
        total=budget.max_retries,
        connect=budget.max_retries,
        read=budget.max_retries,
        status=budget.max_retries,
        backoff_factor=budget.backoff_factor,
        backoff_jitter=budget.backoff_jitter,
        backoff_max=budget.backoff_max,
        # Safe for POST and PUT only because every request carries an idempotency key or is idempotent.
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
    """A response body as a JSON object ({} if it is not one)."""
    try:
        parsed = json.loads(data or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def refusal(payload: dict[str, Any]) -> dict[str, Any]:
    """The `error` object of a refusal ({} if there is none)."""
    error = payload.get("error")
    return error if isinstance(error, dict) else {}


class JsonApiClient:
    """What the PSP's and the payout provider's clients share; each names its service and the errors a
    missing answer raises (the circuit breaker counts `unavailable`, not `busy`)."""

    service: ClassVar[str]
    unavailable: ClassVar[type[PspUnavailable]]
    busy: ClassVar[type[PspBusy]]

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
        """`api_key`: returns the service's API key, called per request so a cached, rotated secret is
        picked up."""
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
    def with_secret_key(cls, base_url: str, key_secret: str, budget: PspCallBudget) -> Self:
        """The client its functions use: the key read from its Secrets Manager secret on first use, not here."""
        return cls(
            base_url,
            api_key=SecretValue(key_secret),
            timeout_seconds=budget.timeout_seconds,
            max_retries=budget.max_retries,
            backoff_factor=budget.backoff_factor,
            backoff_jitter=budget.backoff_jitter,
            backoff_max=budget.backoff_max,
        )

    def _send(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, idempotency_key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """The service's status and JSON body; `unavailable` when it gave no usable answer."""
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
            raise self.unavailable(f"{self.service} unreachable: {type(error).__name__}") from error
        if response.status in (401, 403):
            # Our credentials, not the buyer's card or the seller's account: never fail the work for it;
            # retry (and alarm) until the key is fixed.
            raise self.unavailable(f"{self.service} refused our API key ({response.status})")
        if response.status == 409 and self.busy_on_conflict(response.data):
            raise self.busy(f"{self.service} answered 409: a request with this idempotency key is in flight")
        if response.status >= 500 or response.status == 429:
            raise self.unavailable(f"{self.service} answered {response.status}")
        return response.status, json_object(response.data)

    def busy_on_conflict(self, data: bytes) -> bool:
        """Whether a 409 means a request with the same idempotency key is in flight (the PSP's only 409)."""
        return True
