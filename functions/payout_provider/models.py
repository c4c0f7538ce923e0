"""What the payout provider answers, as the domain code sees it (no HTTP here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from functions.psp.models import PspBusy, PspUnavailable

PayoutStatus = Literal["in_transit", "paid", "failed"]

# The provider's payment statuses, as our payout sees them (submitted: on its way to the bank).
PAYMENT_STATUSES: dict[str, PayoutStatus] = {"submitted": "in_transit", "paid": "paid", "failed": "failed"}


@dataclass(frozen=True)
class PayoutResult:
    status: PayoutStatus
    psp_reference: str | None  # the provider's payment id
    failure_code: str | None = None


class PayoutProviderUnavailable(PspUnavailable):
    """The payout provider gave no usable answer (after retries), or refused our credentials: the payout is
    retried later, never failed for it (and counted by the provider's circuit breaker)."""


class PayoutProviderBusy(PspBusy):
    """The provider answered 409 to a payment: one with this idempotency key is in flight."""
