from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, model_validator

from functions.common.money import AmountMinor, Currency, check_amounts, exponent
from functions.common.pan import find_pan, looks_like_pan


class Priced(BaseModel):
    """A request model's amount: bounded by its currency's maximum (tests/unit/test_amount_limits.py)."""

    amount: AmountMinor
    currency: Currency

    @model_validator(mode="after")
    def _within_maximum(self) -> Priced:
        check_amounts("Priced", self.currency, [(("amount",), self.amount)])
        return self


@pytest.mark.parametrize(("currency", "digits"), [("JPY", 0), ("USD", 2), ("KWD", 3)])
def test_currency_exponents(currency: str, digits: int) -> None:
    assert exponent(currency) == digits


@pytest.mark.parametrize("amount", [1, 99_999_999])
def test_amount_bounds_accepted(amount: int) -> None:
    assert Priced(amount=amount, currency="USD").amount == amount


@pytest.mark.parametrize("amount", [0, -1, 100_000_000, 10.5, "100", True])
def test_amount_rejected(amount: object) -> None:
    with pytest.raises(ValidationError):
        Priced(amount=amount, currency="USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["usd", "US", "XXX", "EURO"])
def test_currency_rejected(currency: str) -> None:
    with pytest.raises(ValidationError):
        Priced(amount=1, currency=currency)


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4242424242424242", True),
        ("4111111111111111", True),
        ("378282246310005", True),
        ("4242424242424241", False),
        ("1234567890123", False),
    ],
)
def test_a_card_number_is_one_that_passes_luhn(number: str, valid: bool) -> None:
    assert looks_like_pan(number) is valid


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("card 4242 4242 4242 4242 here", True),
        ("4242-4242-4242-4242", True),
        ("5555555555554444", True),
        ("order 123456789012", False),
        ("4242424242424241", False),
        ("tok_visa", False),
        ("12345678901234567890123", False),
    ],
)
def test_looks_like_pan(text: str, found: bool) -> None:
    assert looks_like_pan(text) is found


def test_find_pan_names_the_path_of_keys_and_values() -> None:
    assert find_pan({"a": [{"b": "x"}, {"c": "4242424242424242"}]}) == "a[1].c"
    assert find_pan({"meta": {"4111111111111111": "v"}}) == "meta.4111111111111111"
    assert find_pan({"n": 5555555555554444}) == "n"
    assert find_pan({"ok": True, "amount": 1099}) is None


def test_bank_fields_are_exempt_only_at_their_own_path() -> None:
    document = {
        "account_number": "4242424242424242",
        "iban": "DE89 3704 0044 0532 0130 00",
        "note": {"iban": "4242424242424242"},
    }
    assert find_pan(document, exempt=frozenset({"account_number", "iban"})) == "note.iban"
    assert find_pan(document) == "account_number"
