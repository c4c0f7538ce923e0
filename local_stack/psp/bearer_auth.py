"""What both simulators (the PSP's and the payout provider's) ask of every request: their own key as a
bearer token. Anything else is a 401 in the error shape, and nothing happens."""

from __future__ import annotations

import hmac

from local_stack.psp.charges import Reply


def _unauthenticated(code: str, message: str) -> Reply:
    return Reply(401, {"error": {"type": "authentication_error", "code": code, "message": message}})


def refusal(authorization: str | None, api_key: str) -> Reply | None:
    """None if `authorization` carries `api_key` as a bearer token; else the 401 to answer."""
    if not authorization:
        return _unauthenticated("api_key_missing", "You did not provide an API key: send Authorization: Bearer <key>.")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip().encode(), api_key.encode()):
        return _unauthenticated("api_key_invalid", "Invalid API key provided.")
    return None
