"""What the PSP answers, as the domain code sees it (no HTTP here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from functions.common.backoff import TransientError

ChargeStatus = Literal["succeeded", "pending", "failed"]


@dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    psp_reference: str | None
    failure_code: str | None = None


RefundVerdict = Literal["succeeded", "pending", "failed"]


@dataclass(frozen=True)
class RefundResult:
    status: RefundVerdict
    psp_reference: str | None
    failure_code: str | None = None


# What each status of a PSP refund means to us. A canceled refund (Stripe cancels one it will never pay) is a
# failure: left PENDING it would hold its amount of the charge for ever. requires_action is still undecided.
REFUND_VERDICTS: dict[str, RefundVerdict] = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "failed",
}
# The failure code of a refund the PSP canceled without saying why.
REFUND_CANCELED = "refund_canceled"


def refund_result(refund: Mapping[str, Any], status: RefundVerdict | None = None) -> RefundResult | None:
    """Our reading of a PSP refund object (a lookup's or a webhook's): its verdict - `status` when the event
    names one, else its own status's - its id and its failure code; None for a status we do not know."""
    verdict = status or REFUND_VERDICTS.get(str(refund.get("status")))
    if verdict is None:
        return None
    psp_id, code = refund.get("id"), refund.get("failure_code")
    if not (isinstance(code, str) and code):
        code = REFUND_CANCELED if refund.get("status") == "canceled" else None
    return RefundResult(verdict, psp_id if isinstance(psp_id, str) and psp_id else None, code)


class PspUnavailable(TransientError):
    """The PSP could not give an answer (after retries), or refused our credentials: the work must be
    retried later, never failed for it."""


class PspBusy(PspUnavailable):
    """The PSP answered 409: a request with this idempotency key is in flight (the same message on two
    workers). Retried later like an outage, but the PSP is up: the circuit breaker does not count it."""


class CircuitOpen(PspUnavailable):
    """The PSP's circuit breaker is open: the call was not made (fail fast), and is retried later."""
