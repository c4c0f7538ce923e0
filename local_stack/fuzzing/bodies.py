"""Valid request bodies for the POST routes, and mutations of them that the API must refuse.

Every mutation here breaks a documented rule (a required field, a type, a bound, the id pattern, the
currency list, the body size, JSON itself, the card-number rule), so its request is expected to be
answered 4xx and to change nothing. Valid-but-odd inputs (unicode metadata, amounts at the maximum) are
built into the valid bodies instead."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

from functions.common.api import MAX_BODY_BYTES
from functions.common.money import LARGEST_AMOUNT_MINOR, MAX_AMOUNT_BY_CURRENCY

# A few currencies of each kind: two decimals, none (JPY), three (KWD), twelve-digit maximum (IDR).
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "KWD", "IDR")
# Tokens the PSP simulator answers at once (no retries, no pending webhooks): the stack settles quickly.
FAST_TOKENS = ("tok_visa", "tok_mastercard", "tok_amex", "tok_chargeDeclined", "tok_insufficient_funds")
ODD_TEXT = (
    "héllo wörld",
    "日本語のテキスト",
    "emoji 💳🧾",
    "ZWJ \u200d joiner",
    "RTL \u202e txet",
    "tab\tand\nnewline",
    "",
)
# A test card number (Luhn-valid): the API must refuse it wherever it appears.
CARD_NUMBER = "4242424242424242"

WRONG_TYPES: tuple[Any, ...] = (None, True, 12, 10.5, [], {}, ["x"], {"a": "b"})
BAD_IDS = (
    "",
    "x" * 65,
    "sélleŕ",
    "has space",
    "../../etc",
    "semi;colon",
    "nul\u0000byte",
    "💳",
    "lone\ud800surrogate",
    "a/b",
)
BAD_CURRENCIES: tuple[Any, ...] = ("usd", "US", "USDD", "ZZZ", "", "ÜSD", 840, None)
INVALID_JSON = (
    b"{",
    b'{"checkout_id": "co_1",}',
    b"{'single': 'quotes'}",
    b'{"a": 1} trailing',
    b"\xff\xfe\x00garbage",
    b"\xc3\x28",
    b"null",
    b"[]",
    b"123",
    b'"a string"',
    b"true",
    b"",
)


def _amounts(currency: str) -> tuple[int, ...]:
    maximum = MAX_AMOUNT_BY_CURRENCY[currency]
    return (1, 2, 99, 1099, 250_000, maximum - 1, maximum)


def valid_payment(rng: random.Random, tag: str, index: int, sellers: tuple[str, ...]) -> dict[str, Any]:
    currency = rng.choice(CURRENCIES)
    count = rng.choice((1, 1, 2, 3))
    chosen = rng.sample(sellers, count)
    orders: list[dict[str, Any]] = []
    for number, seller in enumerate(chosen):
        order: dict[str, Any] = {
            "payment_order_id": f"po_{tag}_{index}_{number}",
            "seller_id": seller,
            "amount": rng.choice(_amounts(currency)),
        }
        if rng.random() < 0.3:
            order["payment_method"] = rng.choice(FAST_TOKENS)
        if rng.random() < 0.3:  # a commission: none, the least, a tenth, or all of the amount
            order["application_fee"] = rng.choice((0, 1, order["amount"] // 10, order["amount"]))
        orders.append(order)
    body: dict[str, Any] = {
        "checkout_id": f"co_{tag}_{index}",
        "buyer_id": rng.choice(("buyer_1", "b", "B-" + "x" * 62, f"buyer_{tag}")),
        "currency": currency,
        "payment_method": rng.choice(FAST_TOKENS),
        "orders": orders,
    }
    if rng.random() < 0.5:
        body["metadata"] = {rng.choice(("cart", "ключ", "k" * 40, "😀")): rng.choice(ODD_TEXT) for _ in range(3)}
    return body


def valid_payout(rng: random.Random, seller: str) -> dict[str, Any]:
    currency = rng.choice(CURRENCIES)
    return {"seller_id": seller, "amount": rng.choice(_amounts(currency)), "currency": currency}


def encode(body: Any) -> bytes:
    """Real UTF-8, except that a lone surrogate can only travel as a JSON escape."""
    text = json.dumps(body, ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(body).encode()


# ---- mutations: each takes a valid body and returns (what it did, the bytes to send) ----

Mutation = Callable[[random.Random, dict[str, Any]], tuple[str, bytes]]


def _field_paths(
    body: dict[str, Any], required: tuple[str, ...], order_required: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    paths: list[tuple[Any, ...]] = [(name,) for name in required]
    for index in range(len(body.get("orders") or [])):
        paths += [("orders", index, name) for name in order_required]
    return paths


def _set(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


def _delete(body: dict[str, Any], path: tuple[Any, ...]) -> None:
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]


def _name(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


class BodyMutator:
    """Mutations of one POST route's body; `required`/`order_required` name its required fields,
    `ids`/`amounts` the fields with the id pattern and the amount bounds."""

    def __init__(
        self,
        *,
        required: tuple[str, ...],
        ids: tuple[str, ...],
        order_required: tuple[str, ...] = (),
        order_ids: tuple[str, ...] = (),
    ) -> None:
        self.required = required
        self.ids = ids
        self.order_required = order_required
        self.order_ids = order_ids

    def mutate(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        mutations: list[Mutation] = [
            self.delete_field,
            self.wrong_type,
            self.extra_field,
            self.card_number,
            self.deep_nesting,
            self.invalid_json,
            self.oversize,
            self.not_an_object,
        ]
        # Only the mutations a body has the fields for (a refund names no currency, an endpoint no id).
        if any(p[-1] == "amount" for p in _field_paths(body, self.required, self.order_required)):
            mutations.append(self.bad_amount)
        if self.ids or (self.order_ids and body.get("orders")):
            mutations.append(self.bad_id)
        if "currency" in body:
            mutations.append(self.bad_currency)
        if "orders" in body:
            mutations += [self.bad_orders, self.bad_metadata, self.bad_fee]
        return rng.choice(mutations)(rng, copy.deepcopy(body))

    def delete_field(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        path = rng.choice(_field_paths(body, self.required, self.order_required))
        _delete(body, path)
        return f"delete {_name(path)}", encode(body)

    def wrong_type(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        path = rng.choice(_field_paths(body, self.required, self.order_required))
        current = body
        for step in path:
            current = current[step]
        choices = [v for v in WRONG_TYPES if type(v) is not type(current)]
        if path[-1] == "amount":
            choices = [v for v in choices if not isinstance(v, int | float)] + ["1099", "1e3"]
        value = rng.choice(choices)
        _set(body, path, value)
        return f"{_name(path)} = {json.dumps(value)[:40]}", encode(body)

    def bad_amount(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        paths = [p for p in _field_paths(body, self.required, self.order_required) if p[-1] == "amount"]
        path = rng.choice(paths)
        maximum = MAX_AMOUNT_BY_CURRENCY.get(body.get("currency", ""), LARGEST_AMOUNT_MINOR)
        value = rng.choice((0, -1, -(10**30), maximum + 1, 2**63, 2**64 + 1, 10**400, 1099.5))
        if rng.random() < 0.15:  # not JSON numbers, but Python's json reads them; or past int()'s digit limit
            _set(body, path, "__AMOUNT__")
            raw = rng.choice((b"NaN", b"Infinity", b"-Infinity", b"9" * 5000))
            return f"{_name(path)} = {raw[:10]!r}", encode(body).replace(b'"__AMOUNT__"', raw)
        _set(body, path, value)
        return f"{_name(path)} = {str(value)[:30]}", encode(body)

    def bad_fee(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        """An order's application fee above its amount, below zero, fractional, or not a number."""
        index = rng.randrange(len(body["orders"]))
        amount = body["orders"][index]["amount"]
        value = rng.choice((amount + 1, -1, 10.5, "100", None, True, 2**63))
        body["orders"][index]["application_fee"] = value
        return f"orders[{index}].application_fee = {json.dumps(value)[:30]}", encode(body)

    def bad_id(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        paths: list[tuple[Any, ...]] = [(name,) for name in self.ids]
        paths += [("orders", i, name) for i in range(len(body.get("orders") or [])) for name in self.order_ids]
        path = rng.choice(paths)
        value = rng.choice(BAD_IDS)
        _set(body, path, value)
        return f"{_name(path)} = {value[:20]!r}", encode(body)

    def bad_currency(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        value = rng.choice(BAD_CURRENCIES)
        body["currency"] = value
        return f"currency = {value!r}", encode(body)

    def extra_field(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        target = body["orders"][0] if "orders" in body and rng.random() < 0.5 else body
        name = rng.choice(("unknown", "amount_override", "__proto__", "ünïcode", "card"))
        target[name] = rng.choice(("x", 1, None, {"nested": True}))
        return f"extra field {name}", encode(body)

    def card_number(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        spaced = rng.choice((CARD_NUMBER, "4242 4242 4242 4242", "4242-4242-4242-4242", "5555555555554444"))
        if "orders" in body:
            body["metadata"] = {"note": f"card {spaced}"}
            where = "metadata.note"
        else:
            body["seller_id"] = spaced.replace(" ", "")
            where = "seller_id"
        return f"card number in {where}", encode(body)

    def deep_nesting(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        depth = rng.choice((50, 500, 5000, 30000))
        field = (
            rng.choice(("metadata", "orders", "currency")) if "orders" in body else rng.choice(("currency", "amount"))
        )
        opening, closing = rng.choice((("[", "]"), ('{"a":', "}")))
        nested = (opening * depth + "1" + closing * depth).encode()
        raw = encode({**body, field: "__NESTED__"}).replace(b'"__NESTED__"', nested)
        return f"{field} nested {depth} deep", raw

    def invalid_json(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        choice = rng.randrange(len(INVALID_JSON) + 1)
        if choice == len(INVALID_JSON):
            raw = encode(body)
            return "truncated JSON", raw[: rng.randrange(1, len(raw) - 1)]
        return f"invalid JSON {INVALID_JSON[choice][:12]!r}", INVALID_JSON[choice]

    def not_an_object(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        return "body is a list", encode([body])

    def oversize(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        size = MAX_BODY_BYTES + rng.choice((1, 1024, 200_000))
        if "orders" in body:
            body["metadata"] = {"pad": "p" * size}
        else:
            body["padding"] = "p" * size
        return f"body over {MAX_BODY_BYTES} bytes", encode(body)

    def bad_orders(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        kind = rng.choice(("empty", "too many", "duplicate id", "null order"))
        if kind == "empty":
            body["orders"] = []
        elif kind == "too many":
            template = body["orders"][0]
            body["orders"] = [
                {**template, "payment_order_id": f"{template['payment_order_id']}x{i}"} for i in range(101)
            ]
        elif kind == "duplicate id":
            body["orders"] = [body["orders"][0], dict(body["orders"][0])]
        else:
            body["orders"] = [None]
        return f"orders {kind}", encode(body)

    def bad_metadata(self, rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
        kind = rng.choice(("key too long", "value too long", "too many keys", "value not text", "empty key"))
        metadata: Any
        if kind == "key too long":
            metadata = {"k" * 41: "v"}
        elif kind == "value too long":
            metadata = {"k": "v" * 501}
        elif kind == "too many keys":
            metadata = {f"k{i}": "v" for i in range(51)}
        elif kind == "value not text":
            metadata = {"k": rng.choice((1, None, ["v"], {"v": 1}))}
        else:
            metadata = {"": "v"}
        body["metadata"] = metadata
        return f"metadata {kind}", encode(body)


PAYMENT_MUTATOR = BodyMutator(
    required=("checkout_id", "buyer_id", "currency", "payment_method", "orders"),
    ids=("checkout_id", "buyer_id", "payment_method"),
    order_required=("payment_order_id", "seller_id", "amount"),
    order_ids=("payment_order_id", "seller_id", "payment_method"),
)
PAYOUT_MUTATOR = BodyMutator(required=("seller_id", "amount", "currency"), ids=("seller_id",))
REFUND_MUTATOR = BodyMutator(required=("payment_order_id", "amount", "reason"), ids=("payment_order_id",))
ENDPOINT_MUTATOR = BodyMutator(required=("url", "events"), ids=())
PAYOUT_ACCOUNT_MUTATOR = BodyMutator(required=("country", "currency", "account_holder"), ids=())
