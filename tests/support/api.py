"""A small HTTP client for the local API and the PSP simulator (real HTTP on loopback)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import urllib3


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: Any


class ApiClient:
    def __init__(self, base_url: str, api_key: str | None, *, headers: dict[str, str] | None = None) -> None:
        """`headers`: sent with every request (e.g. the PSP simulator's bearer token)."""
        self.base_url = base_url
        self.api_key = api_key
        self.headers = dict(headers or {})
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=60), retries=False)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> HttpResult:
        all_headers = {"Content-Type": "application/json", **self.headers}
        if self.api_key is not None:
            all_headers["x-api-key"] = self.api_key
        if idempotency_key is not None:
            all_headers["Idempotency-Key"] = idempotency_key
        all_headers.update(headers or {})
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        response = self.http.request(method, f"{self.base_url}{path}", body=payload, headers=all_headers)
        try:
            parsed = json.loads(response.data) if response.data else None
        except ValueError:
            parsed = response.data.decode(errors="replace")
        return HttpResult(response.status, {k.lower(): v for k, v in response.headers.items()}, parsed)

    def get(self, path: str) -> HttpResult:
        return self.request("GET", path)

    def post(self, path: str, body: Any, *, idempotency_key: str | None = None) -> HttpResult:
        return self.request(
            "POST", path, body=body, idempotency_key=idempotency_key if idempotency_key is not None else new_key()
        )

    def put(self, path: str, body: Any) -> HttpResult:
        return self.request("PUT", path, body=body)

    def onboard(self, seller_id: str, account: dict[str, Any]) -> dict[str, Any]:
        """Give the seller a payout account (a body from tests.support.bank_accounts); payouts need one."""
        result = self.put(f"/v1/sellers/{seller_id}/payout-account", account)
        assert result.status == 200, result.body
        return dict(result.body)

    def wait_for_payment(self, payment_id: str, *, timeout: float = 120) -> dict[str, Any]:
        """Poll until the payment leaves PROCESSING; fail the test if it does not in time."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.get(f"/v1/payments/{payment_id}")
            assert result.status == 200, result.body
            if result.body["status"] != "PROCESSING" or time.monotonic() > deadline:
                return dict(result.body)
            time.sleep(0.2)


def new_key() -> str:
    return f"key-{uuid.uuid4().hex}"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def checkout(
    *orders: tuple[str, int] | tuple[str, int, str], currency: str = "USD", payment_method: str = "tok_visa"
) -> dict[str, Any]:
    """A checkout body with fresh ids: each order is (seller_id, amount[, payment_method])."""
    body: dict[str, Any] = {
        "checkout_id": unique("co"),
        "buyer_id": unique("buyer"),
        "currency": currency,
        "payment_method": payment_method,
        "orders": [],
    }
    for order in orders:
        entry: dict[str, Any] = {"payment_order_id": unique("po"), "seller_id": order[0], "amount": order[1]}
        if len(order) == 3:
            entry["payment_method"] = order[2]
        body["orders"].append(entry)
    return body
