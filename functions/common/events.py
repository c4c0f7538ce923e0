"""Messages between services. Each queue carries exactly one of these models as its body."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from functions.common.ids import ExternalId
from functions.common.money import AggregateMinor, AmountMinor, Currency, PartMinor
from functions.common.tenants import ScopedId

OrderStatus = Literal["NOT_STARTED", "EXECUTING", "PENDING", "SUCCEEDED", "FAILED"]
TERMINAL_ORDER_STATUSES: frozenset[str] = frozenset({"SUCCEEDED", "FAILED"})
# Where a charged order's share lands: `available` at once ("none", the default), or `pending` until the
# marketplace confirms fulfilment or the hold period ends ("until_fulfilled").
Hold = Literal["none", "until_fulfilled"]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SellerShare(Message):
    """An amount of which a part is the platform's (its commission, or what a refund gives back of it) and
    the rest the seller's. The part is never more than the amount."""

    amount: AmountMinor
    # The name of the field that holds the platform's part.
    _platform_field: ClassVar[str]

    @property
    def platform_part(self) -> int:
        part: int = getattr(self, self._platform_field)
        return part

    @model_validator(mode="after")
    def _platform_part_within_amount(self) -> SellerShare:
        if self.platform_part > self.amount:
            raise ValueError(f"{self._platform_field} {self.platform_part} is more than the amount {self.amount}")
        return self

    @property
    def seller_amount(self) -> int:
        """The seller's part: what their wallet is credited (or gives back, for a refund)."""
        return self.amount - self.platform_part


class _OrderMoney(SellerShare):
    """An order's amount, the marketplace's commission on it (0 when it takes none; the default of
    messages sent before commissions existed) and where the seller's share lands (the default of messages
    sent before holds existed: `available` at once)."""

    _platform_field = "application_fee"
    application_fee: PartMinor = 0
    hold: Hold = "none"


class ExecuteOrder(_OrderMoney):
    """payment -> executor: charge this order once (the whole amount; the fee is ours to book)."""

    payment_id: str
    payment_order_id: ScopedId
    seller_id: ScopedId
    buyer_id: ExternalId
    currency: Currency
    payment_method: ExternalId


class OrderCharged(_OrderMoney):
    """executor -> wallet -> ledger: the PSP charged this order; credit the seller its share, then book it."""

    payment_id: str
    payment_order_id: ScopedId
    seller_id: ScopedId
    currency: Currency
    psp_reference: str


class ReleaseHold(Message):
    """payment API (fulfilment confirmed) / hold sweep (hold period over) -> wallet holds worker: move a held
    order's pending share to `available`, once; whichever arrives first releases it, the other is a no-op."""

    payment_order_id: ScopedId
    seller_id: ScopedId
    reason: Literal["fulfilled", "expired"]


class OrderStatusChanged(Message):
    """executor / wallet / ledger -> payment: progress of one order, applied monotonically."""

    payment_id: str
    payment_order_id: ScopedId
    status: OrderStatus | None = None
    psp_reference: str | None = None
    failure_code: str | None = None
    wallet_updated: bool | None = None
    ledger_updated: bool | None = None


class PostingLine(Message):
    """One line of a journal: often a sum over many orders (a settlement chunk), so it is bounded by the
    64-bit range, not by one order's maximum. A zero line is left out by its producer, never sent."""

    account: str
    direction: Literal["debit", "credit"]
    amount: AggregateMinor


class JournalPosting(Message):
    """any service -> ledger (postings queue): book one balanced journal, exactly once.

    `kind` + `business_id` make the journal id (e.g. kind="payout", business_id=payout_id), so a
    redelivered or re-sent posting rewrites nothing. The ledger rejects an unbalanced journal, a kind
    its `producer` does not own, or a line the kind does not allow (functions/ledger/policy.py)."""

    producer: str
    kind: str
    business_id: str
    currency: Currency
    lines: list[PostingLine]
    payment_order_id: str | None = None
    reference: str | None = None  # e.g. payout_id or settlement run id, stored on each entry
