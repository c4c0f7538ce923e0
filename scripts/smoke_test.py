#!/usr/bin/env python3
"""Post-deploy smoke test: calls the deployed API and fails (exit 1) if it does not answer as the
contract says.

    python scripts/smoke_test.py --outputs cdk-outputs.json          # after `cdk deploy --outputs-file`
    python scripts/smoke_test.py --api-url URL --api-key KEY         # any deployment, e.g. `make run`

With --outputs, the API key's value is read from API Gateway (apigateway:GET on the key, by the id in
the stack outputs). By default every check is read-only or refused before any effect, so it is safe in
prod; --checkout (dev only) also places one tok_visa checkout and waits until it has SUCCEEDED."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STACK_NAME = "Payments"


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]


class Api:
    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, *, key: bool = True, idempotency: bool = True) -> Response:
        headers = {"Accept": "application/json"}
        if key and self.api_key:
            headers["x-api-key"] = self.api_key
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
            if idempotency:
                headers["Idempotency-Key"] = f"smoke-{uuid.uuid4()}"
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310 - our API's URL
                return Response(reply.status, _json(reply.read()))
        except urllib.error.HTTPError as error:
            return Response(error.code, _json(error.read()))


def _json(data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data or b"{}")
    except ValueError:
        return {"raw": data[:200].decode(errors="replace")}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def read_outputs(path: Path, stack: str = STACK_NAME) -> tuple[str, str]:
    """(API URL, API key id) from `cdk deploy --outputs-file`."""
    outputs = json.loads(path.read_text())[stack]
    return outputs["ApiUrl"], outputs["ApiKeyId"]


def api_key_value(key_id: str) -> str:
    import boto3  # only when reading the key from AWS

    return str(boto3.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"])


def _expect(
    name: str, response: Response, status: int, check: Callable[[dict[str, Any]], bool] = lambda _: True
) -> None:
    if response.status != status or not check(response.body):
        raise AssertionError(f"{name}: expected {status}, got {response.status} {json.dumps(response.body)[:300]}")
    print(f"ok   {name} ({response.status})")


def _error_type(expected: str) -> Callable[[dict[str, Any]], bool]:
    return lambda body: body.get("error", {}).get("type") == expected


def wait_until_ready(api: Api, *, timeout: float) -> None:
    """A fresh deployment (and its usage plan key) can take a minute to answer with 200."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.call("GET", "/v1/ledger/trial-balance")
        if response.status == 200 or time.monotonic() > deadline:
            return
        time.sleep(5)


def read_only_checks(api: Api) -> None:
    _expect(
        "trial balance is balanced", api.call("GET", "/v1/ledger/trial-balance"), 200, lambda b: b["balanced"] is True
    )
    _expect(
        "unknown seller has an empty wallet",
        api.call("GET", f"/v1/wallets/smoke_{uuid.uuid4().hex[:12]}"),
        200,
        lambda b: b.get("balances") == {},
    )
    _expect("unknown payment is 404", api.call("GET", "/v1/payments/pay_smoke_missing"), 404, _error_type("not_found"))
    _expect(
        "no API key is refused",
        api.call("POST", "/v1/payments", {}, key=False),
        403,
        _error_type("authentication_error"),
    )
    _expect(
        "missing Idempotency-Key is 400",
        api.call("POST", "/v1/payments", {"orders": []}, idempotency=False),
        400,
        _error_type("invalid_request_error"),
    )
    _expect(
        "invalid checkout is 400 and changes nothing",
        api.call("POST", "/v1/payments", {"checkout_id": "smoke", "currency": "USD", "orders": []}),
        400,
        _error_type("invalid_request_error"),
    )


def checkout(api: Api, *, timeout: float) -> None:
    suffix = uuid.uuid4().hex[:16]
    body = {
        "checkout_id": f"co_smoke_{suffix}",
        "buyer_id": "buyer_smoke",
        "currency": "USD",
        "payment_method": "tok_visa",
        "orders": [{"payment_order_id": f"po_smoke_{suffix}", "seller_id": "seller_smoke", "amount": 100}],
    }
    accepted = api.call("POST", "/v1/payments", body)
    _expect("checkout accepted", accepted, 202, lambda b: b.get("status") == "PROCESSING")
    payment_id = accepted.body["payment_id"]
    deadline = time.monotonic() + timeout
    while True:
        status = api.call("GET", f"/v1/payments/{payment_id}")
        if status.body.get("status") in ("SUCCEEDED", "FAILED", "PARTIALLY_FAILED") or time.monotonic() > deadline:
            break
        time.sleep(2)
    _expect("checkout SUCCEEDED", status, 200, lambda b: b.get("status") == "SUCCEEDED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--outputs", type=Path, help="cdk deploy --outputs-file JSON")
    source.add_argument("--api-url", help="the API's base URL (with the stage, e.g. https://.../dev/)")
    parser.add_argument("--api-key", help="the API key (with --api-url)")
    parser.add_argument("--stack", default=STACK_NAME)
    parser.add_argument("--checkout", action="store_true", help="also run one tok_visa checkout (dev only)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness/checkout")
    args = parser.parse_args(argv)
    if args.outputs:
        url, key_id = read_outputs(args.outputs, args.stack)
        key = api_key_value(key_id)
    else:
        url, key = args.api_url, args.api_key
    api = Api(url, key)
    print(f"smoke test against {url}")
    try:
        wait_until_ready(api, timeout=args.timeout)
        read_only_checks(api)
        if args.checkout:
            checkout(api, timeout=args.timeout)
    except (AssertionError, KeyError, OSError) as failure:
        print(f"FAIL {failure}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
