"""Webhook signatures, the PSP's (`PSP-Signature: t=<unix>,v1=<hex hmac-sha256 of "<t>.<raw body>">`) and
the payout provider's (the same scheme under `Payouts-Signature`, with its own secret), verified
against every currently valid secret (rotation: the old and the new secret overlap) within a tolerance.

The header is attacker-controlled: anything but ASCII digits in `t` and 64 lowercase hex digits in a `v1`
is malformed (a refusal, never an error), and forgeries are checked against the cached secrets only, so
they cannot make the function read the secret again."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Sequence
from typing import Protocol

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from functions.common.errors import InvalidRequest
from functions.psp_webhooks.models import PspEvent, parse_event

SIGNATURE_HEADER = "PSP-Signature"
TOLERANCE_SECONDS = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class SignatureInvalid(InvalidRequest):
    code = "signature_invalid"


class SigningSecrets(Protocol):
    def get(self) -> list[str]:
        """Every currently valid signing secret, as read within the cache period (a rotation, stored next to
        the old value, is seen within one period)."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_signature(
    header: str | None,
    body: bytes,
    *,
    secrets: Sequence[str],
    now: float,
    tolerance_seconds: int = TOLERANCE_SECONDS,
    header_name: str = SIGNATURE_HEADER,
) -> None:
    """Raise SignatureInvalid unless some v1 signature matches some secret and t is within tolerance.
    `header_name`: the sender's header (the PSP's, or the payout provider's), named in the refusal."""
    if not header:
        raise SignatureInvalid(f"The {header_name} header is missing.", param=header_name)
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and _TIMESTAMP.fullmatch(value):
            timestamp = int(value)
        elif name == "v1" and _SIGNATURE.fullmatch(value):
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureInvalid(f"The {header_name} header is malformed.", param=header_name)
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureInvalid("The signature's timestamp is outside the tolerance.", param=header_name)
    expected = [sign(secret, timestamp, body) for secret in secrets if secret]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise SignatureInvalid("No signature matches.", param=header_name)


def secrets_from(secret_string: str) -> list[str]:
    """A secret value is one signing secret, or a JSON object/list of them (rotation: old and new)."""
    try:
        parsed = json.loads(secret_string)
    except ValueError:
        return [secret_string]
    if isinstance(parsed, dict):
        return [str(v) for v in parsed.values() if v]
    if isinstance(parsed, list):
        return [str(v) for v in parsed if v]
    return [secret_string]


def verified_event(
    event: BaseProxyEvent, *, header_name: str, secrets: Sequence[str], tolerance_seconds: int
) -> PspEvent:
    """A webhook request's event, once the signature under `header_name` over its body as sent is verified
    (a body that is not UTF-8 arrives base64-encoded and is checked as bytes): else SignatureInvalid, or
    InvalidRequest for a body that is not an event."""
    body = base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode()
    header = event.headers.get(header_name) or event.headers.get(header_name.lower())
    verify_signature(
        header, body, secrets=secrets, now=time.time(), tolerance_seconds=tolerance_seconds, header_name=header_name
    )
    return parse_event(body)
