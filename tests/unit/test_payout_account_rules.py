"""Payout accounts: inputs a bank or PSP would refuse are refused here, numbers never show in a repr, and
payouts stored before payout accounts existed still read."""

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


def test_a_us_account_is_paid_in_dollars_only_and_an_iban_account_in_its_own_currency() -> None:
    # ACH pays US accounts in USD only: an ACH account in euros is refused, naming the currency
    with pytest.raises(ValidationError) as refused:
        PayoutAccountRequest.model_validate({**us_account_body("s"), "currency": "EUR"})
    assert refused.value.errors()[0]["loc"] == ("currency",)
    # banks keep foreign-currency accounts under IBANs: a German account held in yen is accepted
    assert PayoutAccountRequest.model_validate(iban_account_body("s", currency="JPY")).currency == "JPY"


@pytest.mark.parametrize("routing_number", ["990000000", "500000005"])
def test_a_routing_number_outside_the_federal_reserve_prefixes_is_refused(routing_number: str) -> None:
    from stdnum.us import rtn

    assert rtn.is_valid(routing_number)  # the check digit alone would let it through
    with pytest.raises(ValidationError) as refused:
        PayoutAccountRequest.model_validate({**us_account_body("s"), "routing_number": routing_number})
    assert refused.value.errors()[0]["loc"] == ("routing_number",)


def test_the_request_never_shows_the_numbers_in_its_repr() -> None:
    request = PayoutAccountRequest.model_validate(us_account_body("s"))
    assert US_ACCOUNT not in repr(request) and ROUTING_NUMBER not in repr(request)
    assert US_ACCOUNT not in str(request)
