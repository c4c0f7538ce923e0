"""Payout accounts with in-memory ports: checksums, the country's kind of account, versions, sealing."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from functions.common.errors import Conflict, InvalidRequest, NotFound
from functions.sellers import domain
from functions.sellers.models import BankAccountNumbers, PayoutAccount, PayoutAccountRequest, SellerResponse
from tests.support.bank_accounts import IBAN, ROUTING_NUMBER, US_ACCOUNT, iban_account_body, us_account_body


class Sealer:
    """Reversible and bound to its owner, like the KMS sealer: opening with another owner fails."""

    def seal(self, secret: str, *, seller_id: str, version: str) -> bytes:
        return f"{seller_id}|{version}|{secret[::-1]}".encode()

    def open(self, ciphertext: bytes, *, seller_id: str, version: str) -> str:
        owner_seller, owner_version, reversed_secret = ciphertext.decode().split("|", 2)
        if (owner_seller, owner_version) != (seller_id, version):
            raise PermissionError("encryption context mismatch")
        return reversed_secret[::-1]


class Store:
    def __init__(self) -> None:
        self.versions: dict[tuple[str, int], PayoutAccount] = {}
        self.currents: dict[str, PayoutAccount] = {}
        self.lose_races = 0  # how many add_version calls another writer wins first

    def current(self, seller_id: str) -> PayoutAccount | None:
        return self.currents.get(seller_id)

    def version(self, seller_id: str, version: int) -> PayoutAccount | None:
        return self.versions.get((seller_id, version))

    def add_version(self, account: PayoutAccount, *, previous: int | None) -> bool:
        if self.lose_races:
            self.lose_races -= 1
            rival = account.model_copy(update={"account_holder": "rival"})
            self.versions[(account.seller_id, account.version)] = rival
            self.currents[account.seller_id] = rival
            return False
        current = self.currents.get(account.seller_id)
        if (None if current is None else current.version) != previous:
            return False
        if (account.seller_id, account.version) in self.versions:
            return False
        self.versions[(account.seller_id, account.version)] = account
        self.currents[account.seller_id] = account
        return True


def request(body: dict[str, Any]) -> PayoutAccountRequest:
    return PayoutAccountRequest.model_validate(body)


def test_an_iban_account_is_stored_sealed_and_shown_by_its_last_four() -> None:
    store = Store()
    account = domain.put_payout_account(
        "seller_a",
        request(iban_account_body("seller_a", iban="de89 3704 0044 0532 0130 00")),
        store=store,
        sealer=Sealer(),
    )
    assert (account.version, account.last4, account.status, account.currency) == (1, "3000", "VERIFIED", "EUR")
    assert IBAN.encode() not in account.sealed_numbers  # sealed, not stored as given
    assert SellerResponse.of(account).model_dump() == {
        "seller_id": "seller_a",
        "payout_account": {
            "version": 1,
            "country": "DE",
            "currency": "EUR",
            "account_holder": "seller_a GmbH",
            "last4": "3000",
            "status": "VERIFIED",
        },
    }
    opened = domain.open_destination("seller_a", 1, store=store, sealer=Sealer())
    assert opened.numbers == BankAccountNumbers(iban=IBAN)  # compacted and upper-cased
    assert IBAN not in repr(opened) and IBAN not in str(opened.numbers)


def test_each_put_is_a_new_version_and_a_payout_opens_the_version_it_names() -> None:
    store = Store()
    domain.put_payout_account("s", request(us_account_body("s")), store=store, sealer=Sealer())
    second = domain.put_payout_account(
        "s", request(us_account_body("s", account_number="000111111113")), store=store, sealer=Sealer()
    )
    assert (second.version, domain.get_seller("s", store=store).last4) == (2, "1113")
    first = domain.open_destination("s", 1, store=store, sealer=Sealer())
    assert first.numbers == BankAccountNumbers(account_number=US_ACCOUNT, routing_number=ROUTING_NUMBER)
    assert domain.open_destination("s", 2, store=store, sealer=Sealer()).numbers.account_number == "000111111113"
    with pytest.raises(LookupError):
        domain.open_destination("s", 3, store=store, sealer=Sealer())


def test_a_put_that_loses_a_race_reads_again_and_takes_the_next_version() -> None:
    store = Store()
    store.lose_races = 1
    account = domain.put_payout_account("s", request(us_account_body("s")), store=store, sealer=Sealer())
    assert (account.version, account.account_holder) == (2, "s LLC")
    assert store.versions[("s", 1)].account_holder == "rival"


def test_a_put_that_keeps_losing_answers_409_and_its_own_version_is_not_current() -> None:
    store = Store()
    store.lose_races = domain.PUT_ATTEMPTS
    with pytest.raises(Conflict):
        domain.put_payout_account("s", request(us_account_body("s")), store=store, sealer=Sealer())
    current = store.current("s")
    assert current is not None and current.account_holder == "rival"


def test_an_unknown_seller_is_404() -> None:
    with pytest.raises(NotFound) as missing:
        domain.get_seller("nobody", store=Store())
    assert (missing.value.status_code, missing.value.param) == (404, "seller_id")


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"iban": "DE89370400440532013001"}, "iban"),  # check digits wrong
        ({"iban": "FR7630006000011234567890189"}, "iban"),  # a valid IBAN of another country
        ({"iban": "DE89 3704"}, "iban"),
        ({"country": "de"}, "country"),
        ({"currency": "EURO"}, "currency"),
        ({"account_holder": ""}, "account_holder"),
        ({"account_holder": "tab\there"}, "account_holder"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_an_invalid_iban_account_names_the_field(change: dict[str, Any], param: str) -> None:
    with pytest.raises(ValidationError) as invalid:
        request({**iban_account_body("s"), **change})
    assert invalid.value.errors()[0]["loc"] == (param,)
    assert "DE89" not in str(invalid.value.errors()[0]["msg"])  # the message never echoes the number


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"routing_number": "110000001"}, "routing_number"),  # check digit wrong
        ({"routing_number": "11000000"}, "routing_number"),
        ({"account_number": "123"}, "account_number"),
        ({"account_number": "1234567890123456789"}, "account_number"),
        ({"account_number": "12345a789"}, "account_number"),
    ],
)
def test_an_invalid_us_account_names_the_field(change: dict[str, Any], param: str) -> None:
    with pytest.raises(ValidationError) as invalid:
        request({**us_account_body("s"), **change})
    assert invalid.value.errors()[0]["loc"] == (param,)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**us_account_body("s"), "iban": IBAN, "country": "DE"}, "iban"),  # both kinds
        ({**iban_account_body("s", currency="USD"), "country": "US", "iban": None}, "account_number"),  # no numbers
        ({**us_account_body("s"), "routing_number": None}, "routing_number"),
        ({**us_account_body("s"), "account_number": None}, "account_number"),
        ({**us_account_body("s"), "country": "DE"}, "iban"),  # an IBAN country given US numbers
    ],
)
def test_the_kind_of_account_must_suit_the_country_and_nothing_is_stored(body: dict[str, Any], param: str) -> None:
    store = Store()
    with pytest.raises(InvalidRequest) as invalid:
        domain.put_payout_account("s", request(body), store=store, sealer=Sealer())
    assert (invalid.value.status_code, invalid.value.param) == (400, param)
    assert (store.versions, store.currents) == ({}, {})
