"""The soak's HTTP client for the public API and the PSP simulator: real loopback HTTP, and a POST that
keeps its Idempotency-Key through retries (5xx, 409 in progress, a dropped connection), as a careful
client of the API does."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import urllib3

from local_stack.psp.simulator import bearer

RETRYABLE = frozenset({409, 429, 500, 502, 503, 504})


@dataclass
class Answer:
    status: int
    body: Any


class SoakHttp:
    def __init__(
        self,
        *,
        api_url: str,
        api_key: str,
        psp_url: str,
        psp_api_key: str,
        provider_url: str,
        provider_api_key: str,
        pool_size: int,
    ) -> None:
        self.api_url = api_url
        self.api_key = api_key
        self.psp_url = psp_url
        self.psp_headers = bearer(psp_api_key)
        # The payout provider (its simulator's routes under /payouts/), with its own key.
        self.provider_url = provider_url
        self.provider_headers = bearer(provider_api_key)
        self.http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60), retries=False, maxsize=pool_size, block=True
        )

    def _send(self, method: str, url: str, headers: dict[str, str], body: Any = None) -> Answer:
        payload = json.dumps(body).encode() if body is not None else None
        response = self.http.request(method, url, body=payload, headers=headers)
        try:
            parsed = json.loads(response.data) if response.data else None
        except ValueError:
            parsed = response.data.decode(errors="replace")
        return Answer(response.status, parsed)

    def api(self, method: str, path: str, body: Any = None, *, idempotency_key: str | None = None) -> Answer:
        headers = {"x-api-key": self.api_key, "Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self._send(method, f"{self.api_url}{path}", headers, body)

    def fetch(self, path: str) -> Answer:
        """A GET of the API, retried through transient failures (an injected crash or throttle: a 5xx)."""
        return self._retrying(lambda: self.api("GET", path), deadline=time.monotonic() + 120)

    def get(self, path: str) -> Any:
        """A GET of the API that must answer 200 (retried through transient failures)."""
        answer = self.fetch(path)
        if answer.status != 200:
            raise RuntimeError(f"GET {path} answered {answer.status}: {answer.body}")
        return answer.body

    def put(self, path: str, body: Any, *, patience: float = 300) -> Answer:
        """PUT until the API gives a final answer (a PUT replaces: repeating it is safe)."""
        return self._retrying(lambda: self.api("PUT", path, body), deadline=time.monotonic() + patience)

    def post(self, path: str, body: Any, *, idempotency_key: str, patience: float = 300) -> Answer:
        """POST with one Idempotency-Key until the API gives a final answer (or `patience` runs out)."""
        return self._retrying(
            lambda: self.api("POST", path, body, idempotency_key=idempotency_key),
            deadline=time.monotonic() + patience,
        )

    def psp(self, path: str) -> Any:
        return self._read("PSP", f"{self.psp_url}{path}", self.psp_headers)

    def provider(self, path: str) -> Any:
        return self._read("payout provider", f"{self.provider_url}{path}", self.provider_headers)

    def _read(self, service: str, url: str, headers: dict[str, str]) -> Any:
        answer = self._send("GET", url, headers)
        if answer.status != 200:
            raise RuntimeError(f"{service} GET {url} answered {answer.status}: {answer.body}")
        return answer.body

    @staticmethod
    def _retrying(call: Any, *, deadline: float) -> Answer:
        pause = 0.2
        while True:
            try:
                answer: Answer = call()
            except urllib3.exceptions.HTTPError:
                if time.monotonic() > deadline:
                    raise
            else:
                if answer.status not in RETRYABLE or time.monotonic() > deadline:
                    return answer
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
