"""Test bank accounts: the simulator's (local_stack/psp/test_accounts.py), as request bodies, as the bank
account the payout executor sends, and as a stored account version."""

from __future__ import annotations

from functions.sellers.models import BankAccount, BankAccountNumbers, PayoutAccount
from local_stack.psp.test_accounts import (
    CLOSED_IBAN,
    CLOSED_US_ACCOUNT,
    IBAN,
    REFUSED_US_ACCOUNT,
    ROUTING_NUMBER,
    US_ACCOUNT,
    account_body,
    iban_account_body,
    us_account_body,
)

__all__ = [
    "CLOSED_IBAN",
    "CLOSED_US_ACCOUNT",
    "IBAN",
    "REFUSED_US_ACCOUNT",
    "ROUTING_NUMBER",
    "US_ACCOUNT",
    "account_body",
    "iban_account_body",
    "stored_account",
    "us_account_body",
    "us_bank_account",
]


def us_bank_account(account_number: str = US_ACCOUNT) -> BankAccount:
    return BankAccount(
        account_holder_name="Seller LLC",
        country="US",
        currency="USD",
        numbers=BankAccountNumbers(account_number=account_number, routing_number=ROUTING_NUMBER),
    )


def stored_account(seller_id: str, currency: str = "USD", *, version: int = 1, last4: str = "6789") -> PayoutAccount:
    return PayoutAccount(
        seller_id=seller_id,
        version=version,
        country="US" if currency == "USD" else "DE",
        currency=currency,
        account_holder=f"{seller_id} LLC",
        last4=last4,
        sealed_numbers=b"sealed",
        created_at="2026-01-01T00:00:00.000000Z",
    )
