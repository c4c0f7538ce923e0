"""Schemathesis hooks (schemathesis.toml loads them) for what JSON Schema cannot say about this API.

- Positive test cases keep to the body rules the document states in words: no payment_order_id twice in
  one request, no order's application_fee above its amount, nothing that looks like a card number, at
  most 64 KB, no amount above its currency's maximum (the schema's `maximum` is the largest of any
  currency). The API refuses those with 400 (as documented), so a generated "valid" request breaking one
  would be a false failure.
- Positive POST /v1/payments calls get a fresh Idempotency-Key and fresh payment_order_ids: both are unique
  by design (a reused order id answers 409 duplicate_payment_order, a reused key with another body 422),
  and generated values repeat ("0", "0", ...), so otherwise nearly every payment after the first is a
  conflict and the stateful phase has no created payment to follow its links from.
- Positive POST /v1/webhook-endpoints calls get a fresh Idempotency-Key and a URL the API accepts (the
  document states the URL rules in words), and an endpoint they create is removed at once (after_call):
  it must not linger to receive - and dead-letter - the later tests' events at a host that never answers.
- Positive PUT /v1/sellers/{seller_id}/payout-account calls get real bank numbers of the kind their country
  takes (a checksummed IBAN, or a US account and routing number): checksums are beyond JSON Schema, and
  a generated IBAN is all but never a valid one. A generated account holder that looks like a card
  number is left out, as for the guarded POSTs.
- A webhook call whose PSP-Signature is well formed is signed for real, as the PSP would sign it, so the
  webhook's positive cases reach the event handling instead of all failing the HMAC check. The signing
  secret comes from PAYMENTS_WEBHOOK_SIGNING_SECRET, or from the running `make run` stack (.local/stack.json).
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

import schemathesis
import urllib3
from schemathesis import GenerationMode

from functions.common.api import IDEMPOTENCY_HEADER, MAX_BODY_BYTES
from functions.common.api_docs import SIGNATURE_PATTERN
from functions.common.money import MAX_AMOUNT_BY_CURRENCY
from functions.common.pan import find_pan
from functions.psp_webhooks.signatures import SIGNATURE_HEADER, secrets_from
from functions.sellers.handler import BANK_FIELDS
from tests.support.psp_signatures import signature_header

SECRET_ENV = "PAYMENTS_WEBHOOK_SIGNING_SECRET"
WEBHOOK_PATH = "/v1/webhooks/psp"
# The payout provider's webhooks: their own route, header and signing secret.
PAYOUT_SECRET_ENV = "PAYMENTS_PAYOUT_PROVIDER_SIGNING_SECRET"
PAYOUT_WEBHOOK_PATH = "/v1/webhooks/payout-provider"
PAYOUT_SIGNATURE_HEADER = "Payouts-Signature"
PAYMENTS_PATH = "/v1/payments"
ENDPOINTS_PATH = "/v1/webhook-endpoints"
# Accepted by the API's URL rules; nothing there answers, and the endpoint is removed right away.
PROBE_ENDPOINT_URL = "https://webhooks.schemathesis.invalid/events"
GUARDED_POSTS = (PAYMENTS_PATH, "/v1/payouts")  # the API functions that run functions.common.api.guard_request
PAYOUT_ACCOUNT_PATH = "/v1/sellers/{seller_id}/payout-account"
VALID_IBAN_ACCOUNT = {"country": "DE", "iban": "DE89370400440532013000"}
VALID_US_ACCOUNT = {"country": "US", "account_number": "000123456789", "routing_number": "110000000"}


def _breaks_body_rules(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    orders = [o for o in body.get("orders") or [] if isinstance(o, dict)]
    order_ids = [o.get("payment_order_id") for o in orders]
    if len(order_ids) != len(set(order_ids)):
        return True
    if any(_number(o.get("application_fee")) > _number(o.get("amount")) for o in orders):
        return True
    return (
        _above_currency_maximum(body.get("currency"), [body.get("amount"), *(o.get("amount") for o in orders)])
        or find_pan(body) is not None
        or len(json.dumps(body).encode()) > MAX_BODY_BYTES
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _above_currency_maximum(currency: Any, amounts: list[Any]) -> bool:
    maximum = MAX_AMOUNT_BY_CURRENCY.get(currency) if isinstance(currency, str) else None
    # (JSON Schema's integers include 1230.0: the API takes those as whole numbers too)
    return maximum is not None and any(
        isinstance(a, int | float) and not isinstance(a, bool) and a > maximum for a in amounts
    )


def _positive(case: schemathesis.Case) -> bool:
    return case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE


@schemathesis.hook
def filter_case(context: Any, case: schemathesis.Case) -> bool:
    guarded = case.method == "POST" and case.operation.path in GUARDED_POSTS
    if case.method == "PUT" and case.operation.path == PAYOUT_ACCOUNT_PATH and isinstance(case.body, dict):
        return not (_positive(case) and find_pan(case.body, exempt=BANK_FIELDS) is not None)
    return not (guarded and _positive(case) and _breaks_body_rules(case.body))


def _fresh(value: str) -> str:
    # "_" keeps the suffix apart from any digits before it: no 13-digit run that could look like a card number.
    return f"{value[:51]}_{uuid.uuid4().hex[:12]}"  # still [A-Za-z0-9_-]{1,64}


@functools.cache
def _signing_secret(variable: str = SECRET_ENV, name_part: str = "WebhooksSigningSecret") -> str:
    """The sender's signing secret: from `variable`, else from the running local stack's secret whose name
    holds `name_part` (the PSP's, or the payout provider's)."""
    if os.environ.get(variable):
        return os.environ[variable]
    from local_stack.stack import STATE_FILE, aws_clients

    state = json.loads(STATE_FILE.read_text())
    secrets = aws_clients(state["aws_endpoint"])("secretsmanager")
    name = next(s["Name"] for s in secrets.list_secrets()["SecretList"] if name_part in s["Name"])
    return secrets_from(secrets.get_secret_value(SecretId=name)["SecretString"])[0]


@schemathesis.hook
def before_call(context: Any, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    if not isinstance(case.headers, MutableMapping):
        return
    if case.operation.path == PAYMENTS_PATH and case.method == "POST":
        _freshen_payment(case, case.headers)
    elif case.operation.path == ENDPOINTS_PATH and case.method == "POST":
        _freshen_endpoint(case, case.headers)
    elif case.operation.path == WEBHOOK_PATH:
        _sign_webhook(case, case.headers, SIGNATURE_HEADER, _signing_secret())
    elif case.operation.path == PAYOUT_WEBHOOK_PATH:
        secret = _signing_secret(PAYOUT_SECRET_ENV, "PayoutProviderSigningSecret")
        _sign_webhook(case, case.headers, PAYOUT_SIGNATURE_HEADER, secret)
    elif case.operation.path == PAYOUT_ACCOUNT_PATH and _positive(case) and isinstance(case.body, dict):
        _real_bank_numbers(case.body)


def _real_bank_numbers(body: dict[str, Any]) -> None:
    for field in BANK_FIELDS:
        body.pop(field, None)
    if len(str(body.get("account_holder", ""))) % 2:
        body.update(VALID_IBAN_ACCOUNT)  # an IBAN account may be held in any currency the platform takes
    else:
        body.update(VALID_US_ACCOUNT, currency="USD")  # a US account is paid in dollars only


def _freshen_payment(case: schemathesis.Case, headers: MutableMapping[str, Any]) -> None:
    if not _positive(case) or not isinstance(case.body, dict) or not isinstance(headers.get(IDEMPOTENCY_HEADER), str):
        return
    headers[IDEMPOTENCY_HEADER] = _fresh(headers[IDEMPOTENCY_HEADER])
    for order in case.body.get("orders") or []:
        if isinstance(order, dict) and isinstance(order.get("payment_order_id"), str):
            order["payment_order_id"] = _fresh(order["payment_order_id"])


def _freshen_endpoint(case: schemathesis.Case, headers: MutableMapping[str, Any]) -> None:
    if not _positive(case) or not isinstance(case.body, dict) or not isinstance(headers.get(IDEMPOTENCY_HEADER), str):
        return
    headers[IDEMPOTENCY_HEADER] = _fresh(headers[IDEMPOTENCY_HEADER])
    case.body["url"] = PROBE_ENDPOINT_URL


@schemathesis.hook
def after_call(context: Any, case: schemathesis.Case, response: Any) -> None:
    if case.operation.path != ENDPOINTS_PATH or case.method != "POST" or response.status_code != 201:
        return
    request = response.request
    endpoint_id = json.loads(response.content)["endpoint_id"]
    base = str(request.url).split(ENDPOINTS_PATH, 1)[0]
    removed = urllib3.request(
        "DELETE", f"{base}{ENDPOINTS_PATH}/{endpoint_id}", headers={"x-api-key": request.headers["x-api-key"]}
    )
    if removed.status not in (200, 404):  # 404: a replay of a request whose endpoint is already removed
        raise RuntimeError(f"could not remove the probe endpoint {endpoint_id}: {removed.status}")


def _sign_webhook(case: schemathesis.Case, headers: MutableMapping[str, Any], name: str, secret: str) -> None:
    header = headers.get(name)
    if not isinstance(header, str) or not re.fullmatch(SIGNATURE_PATTERN, header) or not isinstance(case.body, dict):
        return  # a missing or malformed signature is what the case tests: leave it
    # The bytes requests sends for a JSON body (json=): json.dumps with its defaults.
    body = json.dumps(case.body, allow_nan=False).encode()
    headers[name] = signature_header(secret, int(time.time()), body)
