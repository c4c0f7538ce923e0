"""The payout provider's error replies: `{"error": {"type", "code", "message", ...}}`."""

from __future__ import annotations

from typing import Any

from local_stack.psp.charges import Reply


def error(status: int, code: str, message: str, *, error_type: str = "invalid_request_error", **extra: Any) -> Reply:
    return Reply(status, {"error": {"type": error_type, "code": code, "message": message, **extra}})
