"""Payout API models and the stored payout."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.common.ids import ExternalId
from functions.common.money import AMOUNT_RULE, AmountMinor, Currency, check_amounts

PayoutStatus = Literal["PROCESSING", "IN_TRANSIT", "PAID", "FAILED"]
TERMINAL_PAYOUT_STATUSES: frozenset[str] = frozenset({"PAID", "FAILED"})


class PayoutRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"seller_id": "seller_a", "amount": 1000, "currency": "USD"}]},
    )

    seller_id: ExternalId
    amount: AmountMinor = Field(description=f"{AMOUNT_RULE} At most the seller's available balance in the currency.")
    currency: Currency

    @model_validator(mode="after")
    def _amount_within_the_currency_maximum(self) -> PayoutRequest:
        check_amounts(type(self).__name__, self.currency, [(("amount",), self.amount)])
        return self


class Payout(BaseModel):
    payout_id: str
    seller_id: str
    amount: int
    currency: str
    # None on payouts stored before payout accounts existed (their saga fails them: nowhere to pay).
    payout_account_version: int | None = None
    destination_last4: str | None = None
    status: PayoutStatus = "PROCESSING"
    psp_reference: str | None = None
    failure_code: str | None = None
    trigger: Literal["api", "schedule"] = "api"
    created_at: str
    updated_at: str


class PayoutResponse(BaseModel):
    payout_id: str
    seller_id: str
    amount: int
    currency: str
    status: PayoutStatus
    destination_last4: str | None = Field(
        default=None, description="The last four characters of the bank account paid to."
    )
    psp_reference: str | None = None
    failure_code: str | None = None
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, payout: Payout) -> PayoutResponse:
        return cls.model_validate(payout.model_dump(exclude={"trigger", "payout_account_version"}))


class SagaInput(BaseModel):
    """What the pay-out state machine starts with (execution name = payout_id)."""

    payout_id: str
    seller_id: str
    amount: int
    currency: str
    payout_account_version: int | None  # null only for a payout stored before payout accounts
