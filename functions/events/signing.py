"""The `Payments-Signature` header of every delivery, and its check (for receivers and tests).

`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, keyed with the endpoint's secret (its UTF-8
bytes, `whsec_...` included). `t` is the time of the attempt, so every retry carries a fresh signature
over the same body; receivers refuse a `t` too far from their clock (replays) and dedupe by event id."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

SIGNATURE_HEADER = "Payments-Signature"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300
_HEADER = re.compile(r"^t=(?P<t>[0-9]{1,12}),v1=(?P<v1>[0-9a-f]{64})$")


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    header: str | None, body: bytes, *, secret: str, now: int, tolerance: int = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: the header is well formed, recent, and its HMAC matches (in constant time)."""
    match = _HEADER.fullmatch(header or "")
    if match is None:
        return False
    timestamp = int(match["t"])
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(match["v1"], signature(secret, timestamp, body))
