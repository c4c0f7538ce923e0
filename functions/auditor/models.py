"""What the money auditor reports: findings per check, each naming the ids involved."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from functions.common.events import Hold

Check = Literal[
    "wallet_matches_ledger",
    "trial_balance_zero",
    "succeeded_orders_complete",
    "failed_orders_uncharged",
    "processing_past_deadline",
    "dead_letter_queues_empty",
    "refunds_match_psp",
    "commission_within_fee",
]
CHECKS: tuple[Check, ...] = (
    "wallet_matches_ledger",
    "trial_balance_zero",
    "succeeded_orders_complete",
    "failed_orders_uncharged",
    "processing_past_deadline",
    "dead_letter_queues_empty",
    "refunds_match_psp",
    "commission_within_fee",
)


class Finding(BaseModel):
    check: Check
    message: str
    ids: dict[str, str]  # e.g. {"seller_id": "s1", "currency": "USD"} or {"payment_order_id": ...}


class AuditReport(BaseModel):
    started_at: str
    window_start: str
    window_end: str
    orders_checked: int
    violations: dict[Check, int]  # every check, 0 when it passed
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings


class OrderRecord(BaseModel):
    """An order as the executor stores it: the part the auditor reads."""

    payment_order_id: str
    payment_id: str
    seller_id: str
    currency: str
    amount: int
    application_fee: int = 0
    hold: Hold = "none"
    status: str
    psp_reference: str | None = None
    orphan_psp_reference: str | None = None
    open_since: str | None = None


class WalletBalance(BaseModel):
    available: int = 0
    reserved: int = 0
    pending: int = 0
