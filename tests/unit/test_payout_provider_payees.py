"""The payout provider's payees over HTTP: put once under an immutable id (the same body again is the same
payee, another body a 409), accounts checked as a bank checks them (400 with the field at fault), and only
the last four characters of the number kept."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from local_stack.psp.test_accounts import IBAN, ROUTING_NUMBER, US_ACCOUNT
from tests.support.payout_provider import ProviderOnLoopback, fresh_provider, provider_on_loopback

EUR_PAYEE = {"name": "Seller GmbH", "country": "DE", "currency": "EUR", "iban": IBAN}
USD_PAYEE = {
    "name": "Seller LLC",
    "country": "US",
    "currency": "USD",
    "account_number": US_ACCOUNT,
    "routing_number": ROUTING_NUMBER,
}


@pytest.fixture(scope="module")
def servers() -> Iterator[ProviderOnLoopback]:
    with provider_on_loopback() as on_loopback:
        yield on_loopback


@pytest.fixture
def stack(servers: ProviderOnLoopback) -> ProviderOnLoopback:
    return fresh_provider(servers)


def _put(stack: ProviderOnLoopback, payee_id: str, body: Any) -> tuple[int, Any]:
    return stack.call("PUT", f"/payouts/v1/payees/{payee_id}", body)


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (EUR_PAYEE, {"name": "Seller GmbH", "country": "DE", "currency": "EUR", "last4": "3000"}),
        (USD_PAYEE, {"name": "Seller LLC", "country": "US", "currency": "USD", "last4": "6789"}),
    ],
)
def test_a_payee_is_put_and_shows_its_accounts_last_four_only(
    stack: ProviderOnLoopback, body: dict[str, str], shown: dict[str, str]
) -> None:
    before = int(time.time())
    status, payee = _put(stack, "seller1v1", body)
    assert status == 200
    assert before <= payee["created"] <= int(time.time())
    assert payee == {"object": "payee", "id": "seller1v1", **shown, "status": "active", "created": payee["created"]}
    # the provider keeps no full number
    kept = repr(stack.provider.payees.all())
    assert (IBAN not in kept, US_ACCOUNT not in kept, ROUTING_NUMBER not in kept) == (True, True, True)


def test_the_same_id_and_body_again_is_the_same_payee(stack: ProviderOnLoopback) -> None:
    first = _put(stack, "seller1v1", EUR_PAYEE)
    again = _put(stack, "seller1v1", dict(reversed(list(EUR_PAYEE.items()))))  # key order does not matter
    assert first[0] == again[0] == 200
    assert again[1] == first[1]
    assert [p.id for p in stack.provider.payees.all()] == ["seller1v1"]


@pytest.mark.parametrize(
    "other",
    [
        {**EUR_PAYEE, "iban": "DE62370400440532013001"},
        {**EUR_PAYEE, "name": "Seller AG"},
        USD_PAYEE,
    ],
)
def test_the_same_id_with_another_body_is_a_conflict_and_the_payee_stays(
    stack: ProviderOnLoopback, other: dict[str, str]
) -> None:
    first = _put(stack, "seller1v1", EUR_PAYEE)
    status, answer = _put(stack, "seller1v1", other)
    assert (status, answer) == (
        409,
        {"error": {"type": "invalid_request_error", "code": "payee_conflict", "message": answer["error"]["message"]}},
    )
    assert _put(stack, "seller1v1", EUR_PAYEE) == first
    # a new account is a new payee
    assert _put(stack, "seller1v2", other)[0] == 200
    assert sorted(p.id for p in stack.provider.payees.all()) == ["seller1v1", "seller1v2"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**EUR_PAYEE, "iban": "DE89370400440532013001"}, "iban"),  # checksum
        ({**EUR_PAYEE, "iban": "DE89"}, "iban"),
        ({**EUR_PAYEE, "country": "FR"}, "iban"),  # the IBAN's country is DE
        ({**EUR_PAYEE, "iban": 89370400440532013000}, "iban"),
        ({**EUR_PAYEE, "account_number": US_ACCOUNT}, "iban"),  # mixed fields
        ({**USD_PAYEE, "iban": IBAN}, "iban"),
        ({**USD_PAYEE, "routing_number": "110000001"}, "routing_number"),  # checksum
        ({k: v for k, v in USD_PAYEE.items() if k != "routing_number"}, "routing_number"),
        ({**USD_PAYEE, "account_number": "0001234-5678"}, "account_number"),
        ({**USD_PAYEE, "account_number": 123456789}, "account_number"),
        ({**USD_PAYEE, "country": "CA"}, "country"),  # a routing number is a US account's
        ({k: v for k, v in USD_PAYEE.items() if k not in ("account_number", "routing_number")}, "iban"),
        ({k: v for k, v in EUR_PAYEE.items() if k != "name"}, "name"),
        ({**EUR_PAYEE, "name": "  "}, "name"),
        ({k: v for k, v in EUR_PAYEE.items() if k != "country"}, "country"),
        ({k: v for k, v in EUR_PAYEE.items() if k != "currency"}, "currency"),
        ({**EUR_PAYEE, "currency": "eur"}, "currency"),
        ({**EUR_PAYEE, "country": "Germany"}, "country"),
        ({**EUR_PAYEE, "bic": "COBADEFFXXX"}, "bic"),  # a field the provider does not know
    ],
)
def test_an_account_a_bank_would_refuse_is_400_with_the_field_at_fault(
    stack: ProviderOnLoopback, body: dict[str, Any], param: str
) -> None:
    status, answer = _put(stack, "seller1v1", body)
    assert status == 400
    assert answer == {
        "error": {
            "type": "invalid_request_error",
            "code": "parameter_invalid",
            "message": answer["error"]["message"],
            "param": param,
        }
    }
    assert stack.provider.payees.all() == []


@pytest.mark.parametrize("raw", [b"[1, 2]", b"not json", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_400(stack: ProviderOnLoopback, raw: bytes) -> None:
    status, answer = stack.call("PUT", "/payouts/v1/payees/seller1v1", raw=raw)
    assert (status, answer["error"]["code"]) == (400, "body_invalid")
    assert stack.provider.payees.all() == []


@pytest.mark.parametrize(
    "payee_id", ["seller%201", "x" * 65, "seller%2F1", "seller_1", "seller.v1", "tenant%3Aseller", "s%C3%BC"]
)
def test_a_payee_id_outside_its_alphabet_is_400(stack: ProviderOnLoopback, payee_id: str) -> None:
    # letters and digits only, at most 64, as a real payout provider takes them
    status, answer = _put(stack, payee_id, EUR_PAYEE)
    assert (status, answer["error"]["code"], answer["error"]["param"]) == (400, "parameter_invalid", "payee_id")
    assert stack.provider.payees.all() == []


def test_the_longest_payee_id_is_taken(stack: ProviderOnLoopback) -> None:
    assert _put(stack, "x" * 64, EUR_PAYEE)[0] == 200
