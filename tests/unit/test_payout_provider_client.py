"""The payout provider's client against its simulator over loopback HTTP: a payout asks first whether the
provider already paid it, else makes sure the payee of the seller's account version exists and pays it under
the payout's id as the idempotency key; a retry after a lost answer, after the provider forgot the key, or
after a refusal of the repeated request pays once; a new account version is a new payee; the provider's
refusals are results only with no payment behind them; an answer about another payment is no answer; its
key is its own (the PSP's is refused: unavailability, never a failed payout)."""

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

    payee = payee_id("s1", 1)
    first = provider.create_payout(
        idempotency_key="payout_1", amount=700, currency="USD", destination=account, payee=payee
    )
    again = provider.create_payout(  # the same message again, its first answer lost
        idempotency_key="payout_1", amount=700, currency="USD", destination=account, payee=payee
    )

    assert first == again
    assert first.status == "in_transit" and first.psp_reference is not None and first.failure_code is None
    payments = stack.provider.payments.find(reference="payout_1")
    assert [(p.id, p.payee_id, p.amount, p.currency) for p in payments] == [(first.psp_reference, payee, 700, "USD")]
    payees = stack.provider.payees.all()
    assert [(p.id, p.name, p.country, p.currency, p.last4) for p in payees] == [
        (payee, "Seller LLC", "US", "USD", "6789")
    ]
    # the lookup, the payee and the payment; then the lookup alone, which found it: the key read per request
    assert calls == [PROVIDER_KEY] * 4
    assert stack.settled(first.psp_reference).status == "paid"


def test_a_new_account_version_is_a_new_payee_and_the_old_payout_keeps_its_own(stack: ProviderOnLoopback) -> None:
    provider = client(stack)
    provider.create_payout(
        idempotency_key="payout_1", amount=100, currency="USD", destination=us_bank_account(), payee=payee_id("s1", 1)
    )
    provider.create_payout(
        idempotency_key="payout_2",
        amount=200,
        currency="USD",
        destination=us_bank_account("000333333335"),
        payee=payee_id("s1", 2),
    )
    by_reference = {p.reference: p.payee_id for p in stack.provider.payments.find()}
    assert by_reference == {"payout_1": payee_id("s1", 1), "payout_2": payee_id("s1", 2)}
    last4 = {p.id: p.last4 for p in stack.provider.payees.all()}
    assert last4 == {payee_id("s1", 1): "6789", payee_id("s1", 2): "3335"}


def test_the_providers_refusals_are_failed_payouts_with_its_code(stack: ProviderOnLoopback) -> None:
    provider = client(stack)
    refused = provider.create_payout(
        idempotency_key="payout_r",
        amount=100,
        currency="USD",
        destination=us_bank_account(REFUSED_US_ACCOUNT),
        payee=payee_id("s2", 1),
    )
    assert (refused.status, refused.failure_code) == ("failed", "invalid_account")
    assert refused.psp_reference == stack.provider.payments.find(reference="payout_r")[0].id
    # A payee id reused for another account (never by us: ids carry the account version) fails the payout
    conflict = provider.create_payout(
        idempotency_key="payout_c", amount=100, currency="USD", destination=us_bank_account(), payee=payee_id("s2", 1)
    )
    assert conflict == PayoutResult("failed", None, "payee_conflict")
    mismatch = provider.create_payout(
        idempotency_key="payout_m", amount=100, currency="EUR", destination=us_bank_account(), payee=payee_id("s3", 1)
    )
    assert (mismatch.status, mismatch.failure_code) == ("failed", "currency_mismatch")
    assert [p.reference for p in stack.provider.payments.find()] == ["payout_r"]


def test_a_closed_account_goes_in_transit_then_fails_by_webhook(stack: ProviderOnLoopback) -> None:
    result = client(stack).create_payout(
        idempotency_key="payout_x",
        amount=100,
        currency="USD",
        destination=us_bank_account(CLOSED_US_ACCOUNT),
        payee=payee_id("s4", 1),
    )
    assert result.status == "in_transit" and result.psp_reference is not None
    settled = stack.settled(result.psp_reference)
    assert (settled.status, settled.failure_code) == ("failed", "account_closed")


@pytest.mark.parametrize("key", [PSP_KEY, "pk_test_wrong"], ids=["the PSP's key", "another key"])
def test_a_refused_key_is_unavailability_and_nothing_happens(stack: ProviderOnLoopback, key: str) -> None:
    with pytest.raises(PayoutProviderUnavailable, match=r"payout provider refused our API key \(401\)") as raised:
        client(stack, key).create_payout(
            idempotency_key="payout_k", amount=1, currency="USD", destination=us_bank_account(), payee=payee_id("s5", 1)
        )
    assert isinstance(raised.value, PspUnavailable)  # the circuit breaker counts it as an outage
    assert (stack.provider.payees.all(), stack.provider.payments.find()) == ([], [])


def test_an_unreachable_provider_is_unavailability() -> None:
    provider = PayoutProviderClient(
        "http://127.0.0.1:9", api_key=lambda: PROVIDER_KEY, timeout_seconds=0.5, max_retries=0
    )
    with pytest.raises(PayoutProviderUnavailable, match="payout provider unreachable"):
        provider.create_payout(
            idempotency_key="payout_u", amount=1, currency="USD", destination=us_bank_account(), payee=payee_id("s6", 1)
        )


def _pay(provider: PayoutProviderClient, key: str, *, payee: str = "", amount: int = 100) -> PayoutResult:
    return provider.create_payout(
        idempotency_key=key,
        amount=amount,
        currency="USD",
        destination=us_bank_account(),
        payee=payee or payee_id("s7", 1),
    )


def test_a_retry_after_the_provider_forgot_the_key_adopts_the_payment_it_made(stack: ProviderOnLoopback) -> None:
    provider = client(stack)
    first = _pay(provider, "payout_f")
    # Given the provider no longer knows the key (keys expire after a day; a redrive can come later)
    stack.provider.payments._keys.clear()
    # When the payout is tried again
    again = _pay(provider, "payout_f")
    # Then it adopts the payment made for it: one payment, never a second
    assert again.psp_reference == first.psp_reference
    assert [p.id for p in stack.provider.payments.find(reference="payout_f")] == [first.psp_reference]


def test_a_retry_whose_payee_is_refused_still_adopts_the_payment_made(stack: ProviderOnLoopback) -> None:
    provider = client(stack)
    first = _pay(provider, "payout_g")
    # Given the first attempt paid but its answer was lost, and the payee would now be refused (another
    # account under the same payee id)
    retried = provider.create_payout(
        idempotency_key="payout_g",
        amount=100,
        currency="USD",
        destination=us_bank_account("000333333335"),
        payee=payee_id("s7", 1),
    )
    # Then the payment already made is the answer: never a failed payout, never a second payment
    assert retried == first
    assert [p.id for p in stack.provider.payments.find(reference="payout_g")] == [first.psp_reference]


def test_an_answer_about_another_payment_is_no_answer(stack: ProviderOnLoopback) -> None:
    provider = client(stack)
    made = _pay(provider, "payout_h", amount=300)
    with pytest.raises(PayoutProviderUnavailable, match="not the one asked for"):
        _pay(provider, "payout_h", amount=301)  # the lookup finds the payout's payment, for another amount
    assert [p.amount for p in stack.provider.payments.find(reference="payout_h")] == [300]
    assert made.status == "in_transit"
