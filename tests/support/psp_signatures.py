"""Signing webhook bodies as the PSP does (`PSP-Signature: t=<unix>,v1=<hex hmac-sha256 of "<t>.<body>">`),
written independently of the verifier under test."""

from __future__ import annotations

import hashlib
import hmac


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
