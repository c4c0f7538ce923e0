"""One fuzzed request as generated: everything about it is fixed by the seed, except the webhook
signature's timestamp, which is computed when it is sent (so the fingerprint names the kind of signature,
not the clock)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Literal

# write:    a valid request, answered 2xx; it may change state.
# read:     a request that may be answered 2xx or 4xx but must change nothing (reads, replays, duplicates).
# reject:   a request that must be answered 4xx and change nothing.
Expectation = Literal["write", "read", "reject"]

# How a webhook is signed when sent: for real, or broken in a named way.
SignatureKind = Literal["valid", "wrong_secret", "stale", "future", "other_body", "uppercase_hex", "extra_valid"]
STALE_SECONDS = 3600
# Who signs a webhook, and under which header: the PSP, or the payout provider (its own secret and header).
Signer = Literal["psp", "payout_provider"]
SIGNATURE_HEADERS: dict[Signer, str] = {"psp": "PSP-Signature", "payout_provider": "Payouts-Signature"}
# Stands for the stack's API key in a generated request: the key is the target's, the request is the seed's.
API_KEY_PLACEHOLDER = "<api-key>"


@dataclass(frozen=True)
class FuzzRequest:
    index: int
    operation: str  # the route it aims at, "POST /v1/payments"; "unknown path" / "wrong method" for the rest
    mutation: str  # what was done to it, for the report ("valid" when nothing)
    expect: Expectation
    method: str
    path: str  # with the query string, as sent
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    signature: SignatureKind | None = None  # the signer's signature, computed at send time
    signer: Signer = "psp"

    def fingerprint(self) -> str:
        described = json.dumps(
            [self.method, self.path, list(self.headers), self.signature, self.signer, self.expect, self.mutation],
            ensure_ascii=True,
        ).encode()
        return hashlib.sha256(described + b"\n" + (self.body or b"")).hexdigest()

    def label(self) -> str:
        return f"#{self.index} {self.operation} [{self.mutation}]"

    def headers_to_send(
        self, api_key: str, webhook_secrets: dict[Signer, str], now: float | None = None
    ) -> dict[str, str]:
        headers = {name: api_key if value == API_KEY_PLACEHOLDER else value for name, value in self.headers}
        if self.signature is not None:
            secret = webhook_secrets[self.signer]
            headers[SIGNATURE_HEADERS[self.signer]] = signature_header(self.signature, secret, self.body or b"", now)
        return headers


def _hex(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(kind: SignatureKind, secret: str, body: bytes, now: float | None = None) -> str:
    timestamp = int(time.time() if now is None else now)
    if kind == "stale":
        timestamp -= STALE_SECONDS
    elif kind == "future":
        timestamp += STALE_SECONDS
    signed_secret = secret + "-not" if kind == "wrong_secret" else secret
    signed_body = body + b" " if kind == "other_body" else body
    digest = _hex(signed_secret, timestamp, signed_body)
    if kind == "uppercase_hex":
        digest = digest.upper()
    if kind == "extra_valid":
        return f"t={timestamp},v1={'0' * 64},v1={digest}"
    return f"t={timestamp},v1={digest}"


@dataclass
class Outcome:
    request: FuzzRequest
    status: int
    body: bytes = field(repr=False, default=b"")

    @property
    def server_error(self) -> bool:
        return self.status >= 500

    @property
    def matches_expectation(self) -> bool:
        if self.server_error:
            return False
        if self.request.expect == "write":
            return 200 <= self.status < 300
        if self.request.expect == "reject":
            return 400 <= self.status < 500
        return 200 <= self.status < 500
