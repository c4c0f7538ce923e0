"""The payout provider's client against its simulator over loopback HTTP: a payout makes sure the payee of
the seller's account version exists, then pays it under the payout's id as the idempotency key; a retry
after a lost answer pays once; a new account version is a new payee; the provider's refusals are results,
its key is its own (the PSP's is refused: unavailability, never a failed payout), and nothing leaks the
account number beyond its last four characters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.payout_provider.client import PayoutProviderClient, payee_id
from functions.payout_provider.models import PayoutProviderUnavailable, PayoutResult
from functions.psp.models import PspUnavailable
from tests.support.bank_accounts import CLOSED_US_ACCOUNT, REFUSED_US_ACCOUNT, us_bank_account
from tests.support.payout_provider import PROVIDER_KEY, PSP_KEY, ProviderOnLoopback, provider_on_loopback


@pytest.fixture
def stack() -> Iterator[ProviderOnLoopback]:
    with provider_on_loopback(settle_delay=0.05) as running:
        yield running


def client(stack: ProviderOnLoopback, key: str = PROVIDER_KEY, calls: list[str] | None = None) -> PayoutProviderClient:
    def api_key() -> str:
        if calls is not None:
            calls.append(key)
        return key

    return PayoutProviderClient(stack.base_url, api_key=api_key, timeout_seconds=2, max_retries=0)


def test_a_payout_makes_the_payee_then_pays_it_once_under_the_payout_id(stack: ProviderOnLoopback) -> None:
    calls: list[str] = []
    provider = client(stack, calls=calls)
    account = us_bank_account()

    first = provider.create_payout(
        idempotency_key="payout_1", amount=700, currency="USD", destination=account, payee=payee_id("s1", 1)
    )
    again = provider.create_payout(  # the same message again, its first answer lost
        idempotency_key="payout_1", amount=700, currency="USD", destination=account, payee=payee_id("s1", 1)
    )

    assert first == again
    assert first.status == "in_transit" and first.psp_reference is not None and first.failure_code is None
    payments = stack.provider.payments.find(reference="payout_1")
    assert [(p.id, p.payee_id, p.amount, p.currency) for p in payments] == [(first.psp_reference, "s1.v1", 700, "USD")]
    payees = stack.provider.payees.all()
    assert [(p.id, p.name, p.country, p.currency, p.last4) for p in payees] == [
        ("s1.v1", "Seller LLC", "US", "USD", "6789")
    ]
    assert calls == [PROVIDER_KEY] * 4  # payee and payment, twice: the key read per request
    assert stack.settled(first.psp_reference).status == "paid"


def test_a_new_account_version_is_a_new_payee_and_the_old_payout_keeps_its_own(stack: ProviderOnLoopback) -> None:
    provider = client(stack)
    provider.create_payout(
        idempotency_key="payout_1", amount=100, currency="USD", destination=us_bank_account(), payee="s1.v1"
    )
    provider.create_payout(
        idempotency_key="payout_2",
        amount=200,
        currency="USD",
        destination=us_bank_account("000333333335"),
        payee="s1.v2",
    )
    by_reference = {p.reference: p.payee_id for p in stack.provider.payments.find()}
    assert by_reference == {"payout_1": "s1.v1", "payout_2": "s1.v2"}
    assert sorted((p.id, p.last4) for p in stack.provider.payees.all()) == [("s1.v1", "6789"), ("s1.v2", "3335")]


def test_the_providers_refusals_are_failed_payouts_with_its_code(stack: ProviderOnLoopback) -> None:
    provider = client(stack)
    refused = provider.create_payout(
        idempotency_key="payout_r",
        amount=100,
        currency="USD",
        destination=us_bank_account(REFUSED_US_ACCOUNT),
        payee="s2.v1",
    )
    assert (refused.status, refused.failure_code) == ("failed", "invalid_account")
    assert refused.psp_reference == stack.provider.payments.find(reference="payout_r")[0].id
    # A payee id reused for another account (never by us: ids carry the account version) fails the payout
    conflict = provider.create_payout(
        idempotency_key="payout_c", amount=100, currency="USD", destination=us_bank_account(), payee="s2.v1"
    )
    assert conflict == PayoutResult("failed", None, "payee_conflict")
    mismatch = provider.create_payout(
        idempotency_key="payout_m", amount=100, currency="EUR", destination=us_bank_account(), payee="s3.v1"
    )
    assert (mismatch.status, mismatch.failure_code) == ("failed", "currency_mismatch")
    assert [p.reference for p in stack.provider.payments.find()] == ["payout_r"]


def test_a_closed_account_goes_in_transit_then_fails_by_webhook(stack: ProviderOnLoopback) -> None:
    result = client(stack).create_payout(
        idempotency_key="payout_x",
        amount=100,
        currency="USD",
        destination=us_bank_account(CLOSED_US_ACCOUNT),
        payee="s4.v1",
    )
    assert result.status == "in_transit" and result.psp_reference is not None
    settled = stack.settled(result.psp_reference)
    assert (settled.status, settled.failure_code) == ("failed", "account_closed")


@pytest.mark.parametrize("key", [PSP_KEY, "pk_test_wrong"], ids=["the PSP's key", "another key"])
def test_a_refused_key_is_unavailability_and_nothing_happens(stack: ProviderOnLoopback, key: str) -> None:
    with pytest.raises(PayoutProviderUnavailable, match=r"payout provider refused our API key \(401\)") as raised:
        client(stack, key).create_payout(
            idempotency_key="payout_k", amount=1, currency="USD", destination=us_bank_account(), payee="s5.v1"
        )
    assert isinstance(raised.value, PspUnavailable)  # the circuit breaker counts it as an outage
    assert (stack.provider.payees.all(), stack.provider.payments.find()) == ([], [])


def test_an_unreachable_provider_is_unavailability() -> None:
    provider = PayoutProviderClient(
        "http://127.0.0.1:9", api_key=lambda: PROVIDER_KEY, timeout_seconds=0.5, max_retries=0
    )
    with pytest.raises(PayoutProviderUnavailable, match="payout provider unreachable"):
        provider.create_payout(
            idempotency_key="payout_u", amount=1, currency="USD", destination=us_bank_account(), payee="s6.v1"
        )
