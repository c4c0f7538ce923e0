"""Fuzzed requests for the refund, fulfilment, dispute, marketplace-event and seller routes.

Nothing here may succeed in writing: a refund names an order no payment holds (404 at best), a fulfilment
names an unknown order or one of the fuzzer's own, which are never held (404 or 409), a webhook
endpoint's URL is on the reserved `.invalid` domain and its body is always broken (a registered endpoint
would be sent events, and no fuzzed request may make the stack reach beyond loopback), and a payout
account always has a bad number, a bad field or a bad key."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

from local_stack.fuzzing.bodies import BAD_IDS, ENDPOINT_MUTATOR, PAYOUT_ACCOUNT_MUTATOR, REFUND_MUTATOR, encode
from local_stack.fuzzing.requests import API_KEY_PLACEHOLDER, FuzzRequest
from local_stack.psp.test_accounts import IBAN, iban_account_body, us_account_body

if TYPE_CHECKING:
    from local_stack.fuzzing.generator import RequestGenerator

JSON_TYPE = ("Content-Type", "application/json")
REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent")
BAD_URLS = (
    "http://hooks.invalid/payments",
    "ftp://hooks.invalid/payments",
    "https://",
    "javascript:alert(1)",
    "https://10.0.0.1/hooks",
    "https://hooks.invalid/" + "p" * 2100,
    "hooks.invalid/payments",
    "",
    "https://user:secret@hooks.invalid/x",
)
BAD_EVENT_LISTS: tuple[list[object], ...] = (
    [],
    ["unknown.event"],
    ["payment.succeeded", "payment.succeeded"],
    ["PAYMENT.SUCCEEDED"],
    [1],
)
# Account bodies with a number a bank would refuse, or the wrong kind of account for the country.
BAD_ACCOUNTS: tuple[tuple[str, dict[str, object]], ...] = (
    ("IBAN check digits", {"iban": "DE89370400440532013001"}),
    ("IBAN of another country", {"country": "FR"}),
    ("IBAN too short", {"iban": "DE89 3704"}),
    ("IBAN with letters in its number", {"iban": "DE89370400440532O13000"}),
    ("IBAN and US numbers", {"account_number": "000123456789", "routing_number": "110000000"}),
    ("US country with an IBAN", {"country": "US"}),
)
BAD_US_ACCOUNTS: tuple[tuple[str, dict[str, object]], ...] = (
    ("routing check digit", {"routing_number": "110000001"}),
    ("routing number of 8 digits", {"routing_number": "11000000"}),
    ("account number of 3 digits", {"account_number": "123"}),
    ("account number of 18 digits", {"account_number": "1" * 18}),
    ("account number with a letter", {"account_number": "00012345678O"}),
    ("US numbers outside the US", {"country": "DE"}),
    ("no routing number", {"routing_number": None}),
)


def builders(gen: RequestGenerator) -> dict[str, tuple[int, Callable[[int], FuzzRequest]]]:
    return {
        "POST /v1/refunds": (5, lambda index: post_refund(gen, index)),
        "GET /v1/refunds/{refund_id}": (2, gen.get_by_id("/v1/refunds/{refund_id}", "rf")),
        "POST /v1/payment-orders/{payment_order_id}/fulfil": (3, lambda index: post_fulfil(gen, index)),
        "GET /v1/disputes": (2, lambda index: get_disputes(gen, index)),
        "GET /v1/disputes/{dispute_id}": (2, gen.get_by_id("/v1/disputes/{dispute_id}", "dp")),
        "POST /v1/webhook-endpoints": (4, lambda index: post_endpoint(gen, index)),
        "GET /v1/webhook-endpoints": (1, lambda index: gen.read(index, "GET /v1/webhook-endpoints", "", "list")),
        "DELETE /v1/webhook-endpoints/{endpoint_id}": (2, lambda index: delete_endpoint(gen, index)),
        "GET /v1/events": (3, lambda index: get_events(gen, index)),
        "PUT /v1/sellers/{seller_id}/payout-account": (4, lambda index: put_payout_account(gen, index)),
        "GET /v1/sellers/{seller_id}": (2, gen.get_by_id("/v1/sellers/{seller_id}", "seller")),
    }


def put_payout_account(gen: RequestGenerator, index: int) -> FuzzRequest:
    operation = "PUT /v1/sellers/{seller_id}/payout-account"
    rng = gen.rng
    seller = f"{gen.tag}_seller_account_{index}"
    path = f"/v1/sellers/{seller}/payout-account"
    us = rng.random() < 0.5
    body: dict[str, object] = us_account_body(seller) if us else iban_account_body(seller, iban=IBAN)
    headers = [("x-api-key", API_KEY_PLACEHOLDER), JSON_TYPE]
    roll = rng.random()
    if roll < 0.4:
        mutation, change = rng.choice(BAD_US_ACCOUNTS if us else BAD_ACCOUNTS)
        body = {k: v for k, v in {**body, **change}.items() if v is not None}
        return gen.request(index, operation, mutation, "reject", "PUT", path, headers, encode(body))
    if roll < 0.5:
        bad = rng.choice((*BAD_IDS, "s" * 65))
        bad_path = f"/v1/sellers/{quote(bad.encode('utf-8', 'surrogatepass'), safe='')}/payout-account"
        body["iban" if not us else "routing_number"] = "0"  # and a bad number, should the id ever pass
        return gen.request(index, operation, f"seller {bad[:16]!r}", "reject", "PUT", bad_path, headers, encode(body))
    auth = gen.auth_mutation(headers)
    if auth is not None:
        body["iban" if not us else "routing_number"] = "0"
        return gen.request(index, operation, auth[0], "reject", "PUT", path, auth[1], encode(body))
    mutation, raw = PAYOUT_ACCOUNT_MUTATOR.mutate(rng, body)
    return gen.request(index, operation, mutation, "reject", "PUT", path, headers, raw)


def post_refund(gen: RequestGenerator, index: int) -> FuzzRequest:
    operation = "POST /v1/refunds"
    rng = gen.rng
    body = {
        "payment_order_id": f"po_{gen.tag}_unknown_{index}",
        "amount": rng.choice((1, 1099, 99_999_999)),
        "reason": rng.choice(REFUND_REASONS),
    }
    headers = [("x-api-key", API_KEY_PLACEHOLDER), JSON_TYPE, ("Idempotency-Key", f"{gen.tag}-refund-{index}")]
    auth = gen.auth_mutation(headers)
    if auth is not None:
        return gen.request(index, operation, auth[0], "reject", "POST", "/v1/refunds", auth[1], encode(body))
    roll = rng.random()
    if roll < 0.3:
        return gen.request(index, operation, "unknown order", "reject", "POST", "/v1/refunds", headers, encode(body))
    if roll < 0.45:
        mutation, headers = gen.key_mutation(headers)
        return gen.request(index, operation, mutation, "reject", "POST", "/v1/refunds", headers, encode(body))
    mutation, raw = REFUND_MUTATOR.mutate(rng, body)
    return gen.request(index, operation, mutation, "reject", "POST", "/v1/refunds", headers, raw)


def post_endpoint(gen: RequestGenerator, index: int) -> FuzzRequest:
    operation = "POST /v1/webhook-endpoints"
    path = "/v1/webhook-endpoints"
    rng = gen.rng
    body: dict[str, object] = {"url": f"https://hooks.invalid/{gen.tag}/{index}", "events": ["payment.succeeded"]}
    headers = [("x-api-key", API_KEY_PLACEHOLDER), JSON_TYPE, ("Idempotency-Key", f"{gen.tag}-endpoint-{index}")]
    roll = rng.random()
    if roll < 0.3:
        body["url"] = rng.choice(BAD_URLS)
        return gen.request(
            index, operation, f"url {str(body['url'])[:24]!r}", "reject", "POST", path, headers, encode(body)
        )
    if roll < 0.5:
        body["events"] = rng.choice(BAD_EVENT_LISTS)
        return gen.request(
            index, operation, f"events {body['events']!r}"[:40], "reject", "POST", path, headers, encode(body)
        )
    # The rest break the body (or the headers) of a registration that would otherwise be valid.
    auth = gen.auth_mutation(headers)
    if auth is not None:
        body["url"] = rng.choice(BAD_URLS)  # and its body too, should the key ever be taken
        return gen.request(index, operation, auth[0], "reject", "POST", path, auth[1], encode(body))
    if roll < 0.6:
        body["url"] = rng.choice(BAD_URLS)
        mutation, headers = gen.key_mutation(headers)
        return gen.request(index, operation, mutation, "reject", "POST", path, headers, encode(body))
    mutation, raw = ENDPOINT_MUTATOR.mutate(rng, body)
    return gen.request(index, operation, mutation, "reject", "POST", path, headers, raw)


def post_fulfil(gen: RequestGenerator, index: int) -> FuzzRequest:
    operation = "POST /v1/payment-orders/{payment_order_id}/fulfil"
    choice = gen.rng.random()
    if choice < 0.35 and gen.payments:
        # An order of an earlier fuzzed payment: none is held, so 409 (or not charged yet: 409 too)
        order = gen.rng.choice(gen.rng.choice(gen.payments).body["orders"])["payment_order_id"]
        mutation = "an order that is not held"
    elif choice < 0.7:
        order = f"po_{gen.tag}_{index}_unknown"
        mutation = "unknown order"
    else:
        bad = gen.rng.choice((*BAD_IDS, "o" * 65))
        order = quote(bad.encode("utf-8", "surrogatepass"), safe="")
        mutation = f"order {bad[:16]!r}"
    headers = [("x-api-key", API_KEY_PLACEHOLDER)]
    auth = gen.auth_mutation(headers)
    if auth is not None:
        mutation, headers = auth
    return gen.request(index, operation, mutation, "reject", "POST", f"/v1/payment-orders/{order}/fulfil", headers)


def delete_endpoint(gen: RequestGenerator, index: int) -> FuzzRequest:
    operation = "DELETE /v1/webhook-endpoints/{endpoint_id}"
    if gen.rng.random() < 0.5:
        endpoint = f"we_{gen.tag}_{index}"
        mutation = "unknown endpoint"
    else:
        bad = gen.rng.choice((*BAD_IDS, "e" * 65))
        endpoint = quote(bad.encode("utf-8", "surrogatepass"), safe="")
        mutation = f"endpoint {bad[:16]!r}"
    headers = [("x-api-key", API_KEY_PLACEHOLDER)]
    auth = gen.auth_mutation(headers)
    if auth is not None:
        mutation, headers = auth
    return gen.request(index, operation, mutation, "reject", "DELETE", f"/v1/webhook-endpoints/{endpoint}", headers)


def get_disputes(gen: RequestGenerator, index: int) -> FuzzRequest:
    query = gen.rng.choice(
        (
            f"payment_order_id=po_{gen.tag}_{index}",
            "",
            "payment_order_id=",
            "payment_order_id=" + quote("é/../x"),
            "payment_order_id=" + "p" * 81,
            "payment_order_id=a&payment_order_id=b",
            "unknown=1",
        )
    )
    return gen.read(index, "GET /v1/disputes", query, f"query {query[:24]!r}")


def get_events(gen: RequestGenerator, index: int) -> FuzzRequest:
    query = gen.rng.choice(
        (
            "",
            "type=payment.succeeded",
            "type=refund.failed",
            "type=unknown.event",
            "limit=1",
            "limit=0",
            "limit=101",
            "limit=abc",
            f"starting_after=evt_{gen.tag}_{index}",
            "starting_after=%00",
            "starting_after=" + "s" * 200,
            "type=&limit=",
        )
    )
    return gen.read(index, "GET /v1/events", query, f"query {query[:24]!r}")
