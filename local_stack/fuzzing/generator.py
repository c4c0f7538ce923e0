"""The seeded request generator: one random.Random(seed) decides every request, so the same seed and
count give the same requests (fingerprints) against any stack.

Each request aims at one operation of the OpenAPI document (or at a path or method the API does not
have) and says what it expects: `write` (valid, 2xx), `read` (changes nothing, any 2xx/4xx) or `reject`
(4xx, changes nothing)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from local_stack.fuzzing import marketplace
from local_stack.fuzzing.bodies import (
    BAD_IDS,
    PAYMENT_MUTATOR,
    PAYOUT_MUTATOR,
    encode,
    valid_payment,
    valid_payout,
)
from local_stack.fuzzing.requests import (
    API_KEY_PLACEHOLDER,
    SIGNATURE_HEADERS,
    Expectation,
    FuzzRequest,
    SignatureKind,
    Signer,
)

UNKNOWN_PATH = "unknown path"
WRONG_METHOD = "wrong method"
WEBHOOK_PATH = "/v1/webhooks/psp"
WEBHOOK_OPERATION = f"POST {WEBHOOK_PATH}"
# The payout provider's webhooks: their own route, header and secret (payments, not charges).
PAYOUT_WEBHOOK_PATH = "/v1/webhooks/payout-provider"
PAYOUT_WEBHOOK_OPERATION = f"POST {PAYOUT_WEBHOOK_PATH}"
WEBHOOK_PATHS: dict[Signer, str] = {"psp": WEBHOOK_PATH, "payout_provider": PAYOUT_WEBHOOK_PATH}
PAYMENT_EVENT_TYPES = ("payment.paid", "payment.failed", "payment.submitted", "payout.paid", "unknown.event", "t" * 100)
JSON_TYPE = ("Content-Type", "application/json")
ODD_CONTENT_TYPES = (
    "text/plain",
    "application/x-www-form-urlencoded",
    "garbage/;;;",
    "",
    "application/json; charset=latin-1",
)
# Idempotency-Keys that are odd but within the contract (1-255 characters, sent as latin-1 header bytes).
ODD_VALID_KEYS = ("0", "with spaces inside", "!#$%&'*+.^_`|~", "k" * 255, "clé-ñ", "-", "__")
BAD_KEYS = ("", "k" * 256)
WRONG_API_KEYS = ("wrong-key", "", "x" * 300, API_KEY_PLACEHOLDER.upper())
WEBHOOK_TYPES = (
    "charge.succeeded",
    "charge.failed",
    "charge.pending",
    "payout.paid",
    "payment.paid",
    "unknown.event",
    "chargé.succeedéd",
    "t" * 100,
)
BAD_SIGNATURES = ("garbage", "t=,v1=", "t=abc,v1=" + "0" * 64, "v1=" + "a" * 64, "t=1,v1=zz", "t=١٢٣,v1=ü" + "a" * 63)
SIGNATURE_KINDS: tuple[SignatureKind, ...] = ("wrong_secret", "stale", "future", "other_body", "uppercase_hex")
UNKNOWN_PATHS = (
    "/",
    "/v1",
    "/v2/payments",
    "/v1/payments/x/y",
    "/v1/PAYMENTS",
    "/v1/payments/",
    "//v1/payments",
    "/v1/wallets",
    "/v1/ledger",
    "/v1/webhooks/psp/extra",
    "/health/",
    "/%00",
    "/v1/" + "a" * 3000,
    "/v1/payments/%F0%9F%92%B3/x",
    "/.env",
    "/v1/payouts/a/b/c",
)
WRONG_METHODS = (
    ("PUT", "/v1/payments"),
    ("DELETE", "/v1/payments"),
    ("PATCH", "/v1/payouts"),
    ("GET", "/v1/webhooks/psp"),
    ("POST", "/v1/wallets/seller_1"),
    ("DELETE", "/v1/ledger/trial-balance"),
    ("POST", "/health"),
    ("OPTIONS", "/v1/payments"),
    ("TRACE", "/v1/reconciliations"),
    ("POST", "/v1/payments/pay_1"),
    ("PUT", "/v1/payouts/po_1"),
    ("PUT", "/v1/refunds"),
    ("POST", "/v1/disputes"),
    ("PATCH", "/v1/webhook-endpoints/we_1"),
    ("POST", "/v1/events"),
)


@dataclass(frozen=True)
class SentPayment:
    key: str
    body: dict[str, Any]


class RequestGenerator:
    """Generates requests in order. Later requests may refer to earlier valid ones (replays, a reused
    Idempotency-Key or payment_order_id, a duplicate webhook event), which the runner sends first."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.tag = f"fz{seed}"
        self.sellers = tuple(f"{self.tag}_seller_{i}" for i in range(8))
        # Payouts go to sellers no payment ever credits: a valid payout is refused (422) and writes nothing.
        self.broke_sellers = tuple(f"{self.tag}_broke_{i}" for i in range(4))
        self.payments: list[SentPayment] = []
        self.event_ids: dict[Signer, list[str]] = {"psp": [], "payout_provider": []}
        self.builders: dict[str, tuple[int, Callable[[int], FuzzRequest]]] = {
            "POST /v1/payments": (28, self.post_payment),
            "POST /v1/payouts": (10, self.post_payout),
            WEBHOOK_OPERATION: (20, self.post_webhook),
            PAYOUT_WEBHOOK_OPERATION: (8, self.post_payout_webhook),
            "GET /v1/payments/{payment_id}": (5, self.get_by_id("/v1/payments/{payment_id}", "pay")),
            "GET /v1/payouts/{payout_id}": (4, self.get_by_id("/v1/payouts/{payout_id}", "po")),
            "GET /v1/reconciliations/{run_id}": (3, self.get_by_id("/v1/reconciliations/{run_id}", "run")),
            "GET /v1/wallets/{seller_id}": (4, self.get_wallet),
            "GET /v1/ledger/entries": (4, self.get_entries),
            "GET /v1/ledger/trial-balance": (2, self.get_trial_balance),
            "GET /v1/reconciliations": (3, self.get_runs),
            "GET /health": (2, self.get_health),
            **marketplace.builders(self),
            UNKNOWN_PATH: (8, self.unknown_path),
            WRONG_METHOD: (7, self.wrong_method),
        }

    def operations(self) -> set[str]:
        """The document's operations this generator covers."""
        return set(self.builders) - {UNKNOWN_PATH, WRONG_METHOD}

    def generate(self, count: int) -> list[FuzzRequest]:
        names = list(self.builders)
        weights = [self.builders[name][0] for name in names]
        # Every operation at least once, then by weight.
        chosen = names[:count] + self.rng.choices(names, weights=weights, k=max(0, count - len(names)))
        return [self.builders[name][1](index) for index, name in enumerate(chosen)]

    # ---- helpers ----

    def request(
        self,
        index: int,
        operation: str,
        mutation: str,
        expect: Expectation,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes | None = None,
        signature: SignatureKind | None = None,
        signer: Signer = "psp",
    ) -> FuzzRequest:
        return FuzzRequest(index, operation, mutation, expect, method, path, tuple(headers), body, signature, signer)

    def auth_mutation(self, headers: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]] | None:
        """Sometimes: no API key, or a wrong one (403, before any function runs)."""
        if self.rng.random() >= 0.12:
            return None
        rest = [(k, v) for k, v in headers if k != "x-api-key"]
        if self.rng.random() < 0.4:
            return "no x-api-key", rest
        wrong = self.rng.choice(WRONG_API_KEYS)
        return f"wrong x-api-key {wrong[:12]!r}", [*rest, ("x-api-key", wrong)]

    # ---- POST /v1/payments ----

    def post_payment(self, index: int) -> FuzzRequest:
        operation = "POST /v1/payments"
        key = f"{self.tag}-pay-{index}"
        body = valid_payment(self.rng, self.tag, index, self.sellers)
        headers = [("x-api-key", API_KEY_PLACEHOLDER), JSON_TYPE, ("Idempotency-Key", key)]
        roll = self.rng.random()
        # Few valid payments: each grows the tables that moto copies whole on every transaction.
        if roll < 0.12:
            mutation = "valid"
            if self.rng.random() < 0.3:
                odd = self.rng.choice(ODD_VALID_KEYS)
                key = f"{index} {self.tag}".rjust(255, "k") if odd == "k" * 255 else f"{odd} {index} {self.tag}"
                headers[2] = ("Idempotency-Key", key)
                mutation = f"valid, odd Idempotency-Key {key[:16]!r}"
            elif self.rng.random() < 0.3:
                content_type = self.rng.choice(ODD_CONTENT_TYPES)
                headers[1] = ("Content-Type", content_type)
                mutation = f"valid, Content-Type {content_type!r}"
            self.payments.append(SentPayment(key, body))
            return self.request(index, operation, mutation, "write", "POST", "/v1/payments", headers, encode(body))
        if roll < 0.24 and self.payments:
            earlier = self.rng.choice(self.payments)
            kind = self.rng.choice(("replay", "same key, other body", "reused payment_order_id"))
            if kind == "replay":
                headers[2] = ("Idempotency-Key", earlier.key)
                return self.request(
                    index, operation, kind, "read", "POST", "/v1/payments", headers, encode(earlier.body)
                )
            if kind == "same key, other body":
                headers[2] = ("Idempotency-Key", earlier.key)
                changed = {**earlier.body, "buyer_id": f"other_{index}"}
                return self.request(index, operation, kind, "reject", "POST", "/v1/payments", headers, encode(changed))
            reused = {
                **body,
                "orders": [{**body["orders"][0], "payment_order_id": earlier.body["orders"][0]["payment_order_id"]}],
            }
            return self.request(index, operation, kind, "reject", "POST", "/v1/payments", headers, encode(reused))
        auth = self.auth_mutation(headers)
        if auth is not None:
            return self.request(index, operation, auth[0], "reject", "POST", "/v1/payments", auth[1], encode(body))
        if roll < 0.4:
            mutation, headers = self.key_mutation(headers)
            return self.request(index, operation, mutation, "reject", "POST", "/v1/payments", headers, encode(body))
        mutation, raw = PAYMENT_MUTATOR.mutate(self.rng, body)
        return self.request(index, operation, mutation, "reject", "POST", "/v1/payments", headers, raw)

    def key_mutation(self, headers: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]]:
        rest = [(k, v) for k, v in headers if k != "Idempotency-Key"]
        if self.rng.random() < 0.5:
            return "no Idempotency-Key", rest
        bad = self.rng.choice(BAD_KEYS)
        return f"Idempotency-Key of {len(bad)} characters", [*rest, ("Idempotency-Key", bad)]

    # ---- POST /v1/payouts (to sellers with no balance: 422 at best) ----

    def post_payout(self, index: int) -> FuzzRequest:
        operation = "POST /v1/payouts"
        body = valid_payout(self.rng, self.rng.choice(self.broke_sellers))
        headers = [("x-api-key", API_KEY_PLACEHOLDER), JSON_TYPE, ("Idempotency-Key", f"{self.tag}-payout-{index}")]
        auth = self.auth_mutation(headers)
        if auth is not None:
            return self.request(index, operation, auth[0], "reject", "POST", "/v1/payouts", auth[1], encode(body))
        roll = self.rng.random()
        if roll < 0.35:
            return self.request(
                index, operation, "more than the balance", "reject", "POST", "/v1/payouts", headers, encode(body)
            )
        if roll < 0.5:
            mutation, headers = self.key_mutation(headers)
            return self.request(index, operation, mutation, "reject", "POST", "/v1/payouts", headers, encode(body))
        mutation, raw = PAYOUT_MUTATOR.mutate(self.rng, body)
        return self.request(index, operation, mutation, "reject", "POST", "/v1/payouts", headers, raw)

    # ---- POST /v1/webhooks/psp (no API key: the signature authenticates) ----

    def _event(self, index: int) -> dict[str, Any]:
        kind = self.rng.choice(WEBHOOK_TYPES)
        reference: Any = self.rng.choice(
            (
                f"po_{self.tag}_unknown_{index}",
                f"payout_{self.tag}_unknown_{index}",
                "x" * 1500,
                "y" * 3000,
                "ünïcödé_réf",
                "",
                12345,
                None,
                {"nested": "object"},
                ["list"],
                "a/b#c?d",
            )
        )
        event_object: dict[str, Any] = {
            "id": self.rng.choice(("ch_1", "", "z" * 2000, None, 7)),
            "merchant_reference": reference,
        }
        if self.rng.random() < 0.3:
            event_object["failure_code"] = self.rng.choice(("card_declined", "", "f" * 500, 3, None))
        data: Any = {"object": event_object} if self.rng.random() < 0.9 else {"object": self.rng.choice(("str", 1, []))}
        event_id = self.rng.choice((f"evt_{self.tag}_{index}", f"évt_{self.tag}_{index}_" + "e" * 200))
        return {"id": event_id, "type": kind, "created": 1_700_000_000 + index, "data": data}

    def _payment_event(self, index: int) -> dict[str, Any]:
        """A payout provider's event: the payment itself as its data, referencing none of our payouts."""
        reference: Any = self.rng.choice(
            (f"payout_{self.tag}_unknown_{index}", "x" * 1500, "ünïcödé_réf", "", 12345, None, ["list"], "a/b#c?d")
        )
        payment: Any = {
            "id": self.rng.choice(("pmt_1", "", "z" * 2000, None, 7)),
            "reference": reference,
            "status": self.rng.choice(("paid", "failed", "submitted", "odd")),
        }
        if self.rng.random() < 0.3:
            payment["failure_code"] = self.rng.choice(("account_closed", "", "f" * 500, 3, None))
        if self.rng.random() >= 0.9:
            payment = self.rng.choice(({}, {"reference": {"nested": 1}}))
        event_id = self.rng.choice((f"evt_{self.tag}_p{index}", f"évt_{self.tag}_p{index}_" + "e" * 200))
        kind = self.rng.choice(PAYMENT_EVENT_TYPES)
        return {"id": event_id, "type": kind, "created": 1_700_000_000 + index, "data": payment}

    def post_webhook(self, index: int) -> FuzzRequest:
        return self._post_signed(index, "psp", self._event(index))

    def post_payout_webhook(self, index: int) -> FuzzRequest:
        return self._post_signed(index, "payout_provider", self._payment_event(index))

    def _post_signed(self, index: int, signer: Signer, event: dict[str, Any]) -> FuzzRequest:
        path = WEBHOOK_PATHS[signer]
        operation = f"POST {path}"
        headers = [JSON_TYPE]
        roll = self.rng.random()
        seen = self.event_ids[signer]
        if roll < 0.1 and seen:  # a duplicate delivery: acknowledged, no effect
            duplicate = {**event, "id": self.rng.choice(seen)}
            return self.request(
                index,
                operation,
                "duplicate event id",
                "read",
                "POST",
                path,
                headers,
                encode(duplicate),
                "valid",
                signer,
            )
        if roll < 0.45:
            mutation = "valid signature"
            if self.rng.random() < 0.2:
                headers = [("Content-Type", self.rng.choice(ODD_CONTENT_TYPES)), ("x-api-key", "ignored")]
                mutation = "valid signature, odd headers"
            signature: SignatureKind = "extra_valid" if self.rng.random() < 0.15 else "valid"
            seen.append(event["id"])
            return self.request(
                index, operation, mutation, "write", "POST", path, headers, encode(event), signature, signer
            )
        if roll < 0.75:
            return self._bad_signature(index, signer, headers, event)
        mutation, raw = self._bad_event(event)
        return self.request(
            index, operation, f"signed, {mutation}", "reject", "POST", path, headers, raw, "valid", signer
        )

    def _bad_signature(
        self, index: int, signer: Signer, headers: list[tuple[str, str]], event: dict[str, Any]
    ) -> FuzzRequest:
        path = WEBHOOK_PATHS[signer]
        operation = f"POST {path}"
        body = encode(event)
        if self.rng.random() < 0.4:
            kind = self.rng.choice(SIGNATURE_KINDS)
            return self.request(
                index, operation, f"signature {kind}", "reject", "POST", path, headers, body, kind, signer
            )
        literal = self.rng.choice((*BAD_SIGNATURES, None))
        if literal is None:
            return self.request(index, operation, "no signature", "reject", "POST", path, headers, body)
        if signer == "payout_provider" and self.rng.random() < 0.3:
            # the PSP's valid signature under the provider's route: its own header and secret only
            return self.request(
                index, operation, "the PSP's signature", "reject", "POST", path, headers, body, "valid", "psp"
            )
        sent = [*headers, (SIGNATURE_HEADERS[signer], literal.encode().decode("latin-1"))]
        return self.request(index, operation, f"signature {literal[:16]!r}", "reject", "POST", path, sent, body)

    def _bad_event(self, event: dict[str, Any]) -> tuple[str, bytes]:
        kind = self.rng.choice(
            (
                "no id",
                "no type",
                "no created",
                "no data",
                "id too long",
                "created text",
                "created fraction",
                "data list",
                "invalid JSON",
                "nested",
                "empty id",
            )
        )
        changed: Any = dict(event)
        if kind.startswith("no "):
            del changed[kind.removeprefix("no ")]
        elif kind == "id too long":
            changed["id"] = "e" * 256
        elif kind == "empty id":
            changed["id"] = ""
        elif kind == "created text":
            changed["created"] = "yesterday"
        elif kind == "created fraction":
            changed["created"] = 1.5
        elif kind == "data list":
            changed["data"] = [1, 2]
        elif kind == "invalid JSON":
            return kind, encode(event)[:-1]
        else:
            return kind, ("[" * 20000 + "]" * 20000).encode()
        return kind, encode(changed)

    # ---- reads ----

    def _get(self, index: int, operation: str, path: str, mutation: str, expect: Expectation = "read") -> FuzzRequest:
        headers = [("x-api-key", API_KEY_PLACEHOLDER)]
        auth = self.auth_mutation(headers)
        if auth is not None:
            return self.request(index, operation, auth[0], "reject", "GET", path, auth[1])
        return self.request(index, operation, mutation, expect, "GET", path, headers)

    def read(self, index: int, operation: str, query: str, mutation: str) -> FuzzRequest:
        """A read of the operation's path with this query string."""
        path = operation.split(" ", 1)[1]
        return self._get(index, operation, f"{path}?{query}" if query else path, mutation)

    def get_by_id(self, template: str, kind: str) -> Callable[[int], FuzzRequest]:
        operation = f"GET {template}"
        prefix = template[: template.index("{")]

        def build(index: int) -> FuzzRequest:
            if self.rng.random() < 0.4:
                return self._get(index, operation, f"{prefix}{kind}_{self.tag}_{index}", "unknown id")
            bad = self.rng.choice((*BAD_IDS, "i" * 81, "%2e%2e", "..", "a%2Fb", "' OR 1=1 --"))
            return self._get(
                index, operation, prefix + quote(bad.encode("utf-8", "surrogatepass"), safe=""), f"id {bad[:16]!r}"
            )

        return build

    def get_wallet(self, index: int) -> FuzzRequest:
        operation = "GET /v1/wallets/{seller_id}"
        if self.rng.random() < 0.5:
            seller = self.rng.choice((*self.sellers, *self.broke_sellers))
            return self._get(index, operation, f"/v1/wallets/{seller}", "fuzzed seller")
        bad = self.rng.choice((*BAD_IDS, "w" * 65))
        return self._get(
            index,
            operation,
            "/v1/wallets/" + quote(bad.encode("utf-8", "surrogatepass"), safe=""),
            f"seller {bad[:16]!r}",
        )

    def get_entries(self, index: int) -> FuzzRequest:
        operation = "GET /v1/ledger/entries"
        query = self.rng.choice(
            (
                f"payment_order_id=po_{self.tag}_{index}_0",
                f"account=seller_payable:{self.rng.choice(self.sellers)}",
                "",
                "payment_order_id=a&account=b",
                "payment_order_id=" + quote("é/../x"),
                "account=" + "a" * 101,
                "payment_order_id=&account=",
                "unknown=1",
                "payment_order_id=a&payment_order_id=b",
                "account=%00",
            )
        )
        return self._get(
            index, operation, f"/v1/ledger/entries?{query}" if query else "/v1/ledger/entries", f"query {query[:24]!r}"
        )

    def get_trial_balance(self, index: int) -> FuzzRequest:
        query = self.rng.choice(("", "?currency=USD", "?x=" + "y" * 1000, "?%ff=%fe"))
        return self._get(
            index, "GET /v1/ledger/trial-balance", f"/v1/ledger/trial-balance{query}", f"query {query[:16]!r}"
        )

    def get_runs(self, index: int) -> FuzzRequest:
        limit = self.rng.choice(("", "1", "100", "0", "101", "-1", "abc", "1.5", "9" * 40, "%00"))
        path = f"/v1/reconciliations?limit={limit}" if limit else "/v1/reconciliations"
        return self._get(index, "GET /v1/reconciliations", path, f"limit {limit[:12]!r}")

    def get_health(self, index: int) -> FuzzRequest:
        query = self.rng.choice(("", "?verbose=1"))
        return self.request(index, "GET /health", f"query {query!r}", "read", "GET", f"/health{query}", [])

    # ---- paths and methods the API does not have ----

    def unknown_path(self, index: int) -> FuzzRequest:
        path = self.rng.choice(UNKNOWN_PATHS)
        method = self.rng.choice(("GET", "POST"))
        headers = [("x-api-key", API_KEY_PLACEHOLDER), JSON_TYPE, ("Idempotency-Key", f"{self.tag}-unknown-{index}")]
        body = json.dumps({"anything": index}).encode() if method == "POST" else None
        return self.request(index, UNKNOWN_PATH, f"{method} {path[:40]}", "reject", method, path, headers, body)

    def wrong_method(self, index: int) -> FuzzRequest:
        method, path = self.rng.choice(WRONG_METHODS)
        headers = [("x-api-key", API_KEY_PLACEHOLDER), JSON_TYPE, ("Idempotency-Key", f"{self.tag}-method-{index}")]
        body = json.dumps({"anything": index}).encode() if method in ("PUT", "POST", "PATCH") else None
        return self.request(index, WRONG_METHOD, f"{method} {path}", "reject", method, path, headers, body)
