"""Review of the sellers' payout accounts (issue 19 part 1): inputs the API accepts but a bank or PSP would
refuse, numbers shown by a repr, and payouts stored before this change that no longer read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from functions.payout.models import Payout
from functions.sellers.models import PayoutAccountRequest
from tests.support.bank_accounts import ROUTING_NUMBER, US_ACCOUNT, iban_account_body, us_account_body


def test_a_payout_stored_before_payout_accounts_existed_still_reads() -> None:
    # An item the payouts table holds from before this change: no payout_account_version, no last4.
    legacy = {
        "payout_id": "payout_old",
        "seller_id": "seller_a",
        "amount": 500,
        "currency": "USD",
        "status": "PAID",
        "trigger": "api",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "updated_at": "2026-01-01T00:00:00.000000Z",
    }
    assert Payout.model_validate(legacy).payout_id == "payout_old"


@pytest.mark.parametrize(
    "iban",
    [
        "DE\u0668\u0669370400440532013000",  # Arabic-Indic check digits: stdnum computes with them, banks do not
    ],
)
def test_an_iban_a_bank_cannot_read_is_refused(iban: str) -> None:
    with pytest.raises(ValidationError):
        PayoutAccountRequest.model_validate(iban_account_body("s", iban=iban))


@pytest.mark.parametrize(
    "body",
    [
        {**us_account_body("s"), "currency": "EUR"},  # an ACH account in euros
        iban_account_body("s", currency="JPY"),  # a German account in yen
    ],
)
def test_an_account_in_a_currency_its_country_cannot_be_paid_in_is_refused(body: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        PayoutAccountRequest.model_validate(body)


def test_the_request_never_shows_the_numbers_in_its_repr() -> None:
    request = PayoutAccountRequest.model_validate(us_account_body("s"))
    assert US_ACCOUNT not in repr(request) and ROUTING_NUMBER not in repr(request)
    assert US_ACCOUNT not in str(request)
