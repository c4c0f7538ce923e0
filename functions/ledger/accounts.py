"""The ledger's account names, the one place they are written down.

Per-seller accounts are `<kind>:<seller_id>`. The payout saga's state machine
(infra/constructs/payout_saga.py) names them with States.Format from the `*_FORMAT` templates:
str.format and States.Format read `{}` alike, so one text serves both languages.
Standard library only: the CDK app imports this module too."""

from __future__ import annotations

# What the PSP owes us: charged, not yet settled into the bank.
PSP_RECEIVABLE = "psp_receivable"
# Settled cash in our bank account, and the fees the PSP kept when it settled.
BANK_CASH = "bank_cash"
PSP_FEE_EXPENSE = "psp_fee_expense"

# The marketplace's commissions (orders' application fees), less what refunds gave back of them.
PLATFORM_REVENUE = "platform_revenue"

# What we owe a seller: equal to their wallet's available balance.
SELLER_PAYABLE_FORMAT = "seller_payable:{}"
# What we will owe a seller once their held orders are fulfilled: equal to their wallet's pending balance.
SELLER_PENDING_FORMAT = "seller_pending:{}"
# A seller's payouts on their way to the bank: equal to their wallet's reserved balance.
PAYOUT_IN_TRANSIT_FORMAT = "payout_in_transit:{}"
# A seller's money held for open disputes (amount + the PSP's dispute fee): the rest of their wallet's
# reserved balance (reserved = payout in transit + dispute reserve).
DISPUTE_RESERVE_FORMAT = "dispute_reserve:{}"


def seller_payable(seller_id: str) -> str:
    return SELLER_PAYABLE_FORMAT.format(seller_id)


def seller_pending(seller_id: str) -> str:
    return SELLER_PENDING_FORMAT.format(seller_id)


def payout_in_transit(seller_id: str) -> str:
    return PAYOUT_IN_TRANSIT_FORMAT.format(seller_id)


def dispute_reserve(seller_id: str) -> str:
    return DISPUTE_RESERVE_FORMAT.format(seller_id)
