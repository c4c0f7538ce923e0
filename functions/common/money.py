"""Money: integer minor units plus an ISO 4217 currency. Never floats."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

# ISO 4217 minor-unit exponents for the currencies the platform accepts.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AED": 2,
    "AUD": 2,
    "BHD": 3,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CLP": 0,
    "CNY": 2,
    "CZK": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "IDR": 2,
    "ILS": 2,
    "INR": 2,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MXN": 2,
    "MYR": 2,
    "NOK": 2,
    "NZD": 2,
    "OMR": 3,
    "PHP": 2,
    "PLN": 2,
    "RON": 2,
    "SAR": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TND": 3,
    "TRY": 2,
    "TWD": 2,
    "UGX": 0,
    "USD": 2,
    "VND": 0,
    "XAF": 0,
    "XOF": 0,
    "ZAR": 2,
}

MAX_AMOUNT_MINOR = 99_999_999
# Sums of amounts (journal lines, tallies, balances): 64-bit, never bounded by a per-request limit.
MAX_AGGREGATE_MINOR = 2**63 - 1


def _known_currency(code: str) -> str:
    if code not in CURRENCY_EXPONENTS:
        raise ValueError("must be a supported ISO 4217 currency code in upper case")
    return code


Currency = Annotated[
    str,
    Field(
        min_length=3,
        max_length=3,
        pattern=r"^[A-Z]{3}$",
        json_schema_extra={"enum": sorted(CURRENCY_EXPONENTS)},
        description="ISO 4217, upper case: one of the currencies the platform accepts.",
    ),
    AfterValidator(_known_currency),
]


def _whole_number(value: Any) -> Any:
    # JSON (and JSON Schema) does not tell 1099.0 from 1099: both are the integer 1099.
    return int(value) if isinstance(value, float) and value.is_integer() else value


# strict: a JSON 10.99, "1099" or true is rejected instead of coerced.
AmountMinor = Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT_MINOR), BeforeValidator(_whole_number)]
# A sum of many amounts (a journal line, a tally, a balance): positive and 64-bit, however many orders.
AggregateMinor = Annotated[int, Field(strict=True, gt=0, le=MAX_AGGREGATE_MINOR), BeforeValidator(_whole_number)]


def exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS[currency]
