"""Test bank accounts: valid ones, the PSP simulator's test accounts, and the payout-account bodies that
onboard a seller with them (US accounts for USD, IBANs for EUR)."""

from __future__ import annotations

from typing import Any

from functions.sellers.models import BankAccount, BankAccountNumbers, PayoutAccount

ROUTING_NUMBER = "110000000"
US_ACCOUNT = "000123456789"
# The simulator's test accounts (local_stack/psp/payouts.py): paid, closed after going in transit, refused.
CLOSED_US_ACCOUNT = "000111111113"
REFUSED_US_ACCOUNT = "000222222227"
IBAN = "DE89370400440532013000"
CLOSED_IBAN = "DE62370400440532013001"


def us_account_body(seller_id: str, *, account_number: str = US_ACCOUNT) -> dict[str, Any]:
    return {
        "country": "US",
        "currency": "USD",
        "account_holder": f"{seller_id} LLC",
        "account_number": account_number,
        "routing_number": ROUTING_NUMBER,
    }


def iban_account_body(seller_id: str, *, iban: str = IBAN, currency: str = "EUR") -> dict[str, Any]:
    return {"country": iban[:2].upper(), "currency": currency, "account_holder": f"{seller_id} GmbH", "iban": iban}


def account_body(seller_id: str, currency: str) -> dict[str, Any]:
    """A valid payout account for payouts in `currency`."""
    return us_account_body(seller_id) if currency == "USD" else iban_account_body(seller_id, currency=currency)


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
