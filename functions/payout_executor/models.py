"""The saga's payout tasks and the payout execution record (one item per payout_id)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

PayoutOutcome = Literal["paid", "failed"]


class PayoutTask(BaseModel):
    """saga -> payout executor (payout queue)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["execute", "await_confirmation"]
    payout_id: str
    task_token: str
    seller_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    payout_account_version: int | None = None


class PayoutRecord(BaseModel):
    payout_id: str
    psp_reference: str | None = None
    outcome: PayoutOutcome | None = None
    failure_code: str | None = None
    confirm_token: str | None = None
    answered_token: str | None = None
