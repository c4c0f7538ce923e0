"""The refund service's side of the PSP webhooks: a refund event's verdict, applied to one of our refunds
through the refund's conditional transitions (functions.refund.domain.settle_refund)."""

from __future__ import annotations

from typing import Any

from functions.psp.models import RefundResult, refund_result
from functions.refund import domain
from functions.refund.models import PspRefundStatus

# refund.created / refund.updated carry the refund's status; the others name it.
_EVENT_STATUS: dict[str, PspRefundStatus] = {"refund.succeeded": "succeeded", "refund.failed": "failed"}
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.succeeded", "refund.failed"})


def verdict_of(event_type: str, refund: dict[str, Any]) -> RefundResult | None:
    """The PSP's verdict a refund event states, or None if it states none we know."""
    return refund_result(refund, _EVENT_STATUS.get(event_type))


class RefundVerdicts:
    def __init__(self, store: domain.RefundStore, wallet: domain.Publisher) -> None:
        self.store = store
        self.wallet = wallet

    def settle(self, refund_id: str, verdict: RefundResult) -> bool:
        """Apply the verdict; False if the refund is not ours."""
        refund = domain.settle_refund(
            refund_id,
            verdict.status,
            psp_refund_id=verdict.psp_reference,
            failure_code=verdict.failure_code,
            store=self.store,
            wallet=self.wallet,
        )
        return refund is not None
