"""Money: integer minor units plus an ISO 4217 currency. Never floats."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from functions.common.numbers import whole_number

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

# The largest amount one request may carry (a payment order, a payout), per currency: eight digits of
# minor units (999,999.99 USD), or twelve where eight digits are worth little. TWELVE_DIGIT_CURRENCIES:
# the accepted currencies whose minor unit is worth less than a tenth of a US cent, so that eight digits
# come to less than about 100,000 USD (IDR: about 60 USD). COP, PYG, IRR or LBP belong here if accepted.
MAX_AMOUNT_MINOR = 99_999_999
TWELVE_DIGIT_AMOUNT_MINOR = 999_999_999_999
TWELVE_DIGIT_CURRENCIES = frozenset({"HUF", "IDR", "KRW", "UGX", "VND"})
MAX_AMOUNT_BY_CURRENCY: dict[str, int] = {
    code: TWELVE_DIGIT_AMOUNT_MINOR if code in TWELVE_DIGIT_CURRENCIES else MAX_AMOUNT_MINOR
    for code in CURRENCY_EXPONENTS
}
LARGEST_AMOUNT_MINOR = max(MAX_AMOUNT_BY_CURRENCY.values())
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


AMOUNT_RULE = (
    f"Minor units (cents for USD): an integer from 1 to the currency's maximum, {MAX_AMOUNT_MINOR:,} "
    f"({TWELVE_DIGIT_AMOUNT_MINOR:,} in {', '.join(sorted(TWELVE_DIGIT_CURRENCIES))}); above it, 400 "
    "parameter_invalid."
)
# strict: a JSON 10.99, "1099" or true is rejected instead of coerced. The bound is the largest of any
# currency; a request model checks its currency's own with `check_amounts`.
AmountMinor = Annotated[
    int,
    Field(strict=True, gt=0, le=LARGEST_AMOUNT_MINOR, description=AMOUNT_RULE),
    BeforeValidator(whole_number),
]
# A part of one amount that may be nothing (an order's application fee): 0 up to the largest amount.
PartMinor = Annotated[int, Field(strict=True, ge=0, le=LARGEST_AMOUNT_MINOR), BeforeValidator(whole_number)]
# A sum of many amounts (a journal line, a tally, a balance): positive and 64-bit, however many orders.
AggregateMinor = Annotated[int, Field(strict=True, gt=0, le=MAX_AGGREGATE_MINOR), BeforeValidator(whole_number)]


def exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS[currency]


def max_amount(currency: str) -> int:
    return MAX_AMOUNT_BY_CURRENCY[currency]


def check_amounts(model: str, currency: str, amounts: Iterable[tuple[tuple[str | int, ...], int]]) -> None:
    """Raise a ValidationError naming every amount (by its location in `model`) above `currency`'s maximum.
    Called from a validator of the model, so the locations nest under it (e.g. orders[1].amount). The
    OpenAPI document states the rule in the amount's description (AMOUNT_RULE) and its `maximum` is the
    largest of any currency: a JSON Schema condition on the currency would split the request models of
    generated clients in two."""
    maximum = MAX_AMOUNT_BY_CURRENCY.get(currency)
    if maximum is None:
        return  # the currency itself is refused
    errors = [
        InitErrorDetails(
            type=PydanticCustomError(
                "amount_above_currency_maximum",
                "Input should be at most {maximum} minor units in {currency}",
                {"maximum": maximum, "currency": currency},
            ),
            loc=loc,
            input=amount,
        )
        for loc, amount in amounts
        if amount > maximum
    ]
    if errors:
        raise ValidationError.from_exception_data(model, errors)
