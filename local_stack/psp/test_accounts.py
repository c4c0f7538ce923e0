"""The simulator's test bank accounts (like a PSP's test mode) and payout-account bodies built from them:
the soak, the demo and the tests onboard sellers with these."""

from __future__ import annotations

from typing import Any

ROUTING_NUMBER = "110000000"
US_ACCOUNT = "000123456789"
IBAN = "DE89370400440532013000"
# Paid to: goes in transit, then fails with account_closed.
CLOSED_US_ACCOUNT = "000111111113"
CLOSED_IBAN = "DE62370400440532013001"
# Refused at once (402 invalid_account).
REFUSED_US_ACCOUNT = "000222222227"
REFUSED_IBAN = "DE35370400440532013002"
CLOSED_ACCOUNTS = frozenset({CLOSED_US_ACCOUNT, CLOSED_IBAN})
REFUSED_ACCOUNTS = frozenset({REFUSED_US_ACCOUNT, REFUSED_IBAN})


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
    """A payout account the simulator pays, for payouts in `currency` (US for USD, an IBAN otherwise)."""
    return us_account_body(seller_id) if currency == "USD" else iban_account_body(seller_id, currency=currency)
