"""Payout use cases with in-memory ports: the API's refusal, idempotent start, the daily run."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from functions.payout import domain
from functions.payout.models import Payout, PayoutRequest, SagaInput
from functions.sellers.models import PayoutAccount
from tests.support.bank_accounts import stored_account


class Store:
    def __init__(self) -> None:
        self.items: dict[str, Payout] = {}

    def insert(self, payout: Payout) -> bool:
        if payout.payout_id in self.items:
            return False
        self.items[payout.payout_id] = payout
        return True

    def get(self, payout_id: str) -> Payout | None:
        return self.items.get(payout_id)


class Balances:
    def __init__(self, balances: dict[tuple[str, str], int]) -> None:
        self.balances = balances

    def available(self, seller_id: str, currency: str) -> int:
        return self.balances.get((seller_id, currency), 0)

    def balances_at_least(self, minimum: Callable[[str], int]) -> Iterator[tuple[str, str, int]]:
        for (seller, currency), amount in self.balances.items():
            if amount > 0 and amount >= minimum(currency):
                yield seller, currency, amount


class Accounts:
    def __init__(self, *accounts: PayoutAccount) -> None:
        self.accounts = {a.seller_id: a for a in accounts}

    def current(self, seller_id: str) -> PayoutAccount | None:
        return self.accounts.get(seller_id)


def accounts_for(*sellers: str, currency: str = "USD") -> Accounts:
    return Accounts(*(stored_account(s, currency) for s in sellers))


class Saga:
    def __init__(self) -> None:
        self.started: list[SagaInput] = []

    def start(self, saga_input: SagaInput) -> None:
        self.started.append(saga_input)


def test_more_than_available_is_refused_before_anything_is_stored() -> None:
    store, saga = Store(), Saga()
    with pytest.raises(domain.InsufficientFunds) as refused:
        domain.request_payout(
            PayoutRequest(seller_id="s1", amount=501, currency="USD"),
            payout_id="payout_1",
            store=store,
            balances=Balances({("s1", "USD"): 500}),
            accounts=accounts_for("s1"),
            saga=saga,
        )
    assert (refused.value.status_code, refused.value.code, refused.value.param) == (422, "insufficient_funds", "amount")
    assert (store.items, saga.started) == ({}, [])


def test_a_retried_request_restarts_the_same_saga_and_stores_one_payout() -> None:
    store, saga = Store(), Saga()
    balances = Balances({("s1", "USD"): 500})
    request = PayoutRequest(seller_id="s1", amount=500, currency="USD")
    accounts = accounts_for("s1")
    first = domain.request_payout(
        request, payout_id="payout_1", store=store, balances=balances, accounts=accounts, saga=saga
    )
    # the balance is reserved meanwhile; the retry must not be refused, nor create a second payout
    balances.balances[("s1", "USD")] = 0
    again = domain.request_payout(
        request, payout_id="payout_1", store=store, balances=balances, accounts=accounts, saga=saga
    )
    assert first == again
    assert len(store.items) == 1
    assert [s.payout_id for s in saga.started] == ["payout_1", "payout_1"]


def test_daily_run_pays_whole_balances_at_or_above_the_threshold_in_each_currencys_units() -> None:
    store, saga = Store(), Saga()
    balances = Balances({("a", "USD"): 10_000, ("b", "USD"): 9_999, ("c", "JPY"): 100, ("d", "KWD"): 99_999})
    accounts = Accounts(*(stored_account(s, c) for s, c in (("a", "USD"), ("b", "USD"), ("c", "JPY"), ("d", "KWD"))))
    started = domain.run_scheduled_payouts(
        threshold_major=100, day="2026-01-02", store=store, balances=balances, accounts=accounts, saga=saga
    ).started
    assert sorted((p.seller_id, p.amount, p.currency, p.trigger) for p in started) == [
        ("a", 10_000, "USD", "schedule"),
        ("c", 100, "JPY", "schedule"),
    ]
    again = domain.run_scheduled_payouts(
        threshold_major=100, day="2026-01-02", store=store, balances=balances, accounts=accounts, saga=saga
    ).started
    assert {p.payout_id for p in again} == {p.payout_id for p in started}
    assert len(store.items) == 2


@pytest.mark.parametrize(("status", "failure_code"), [("PAID", None), ("FAILED", "account_closed")])
def test_a4_repost_after_the_idempotency_record_expired_starts_no_saga_for_a_closed_payout(
    status: str, failure_code: str | None
) -> None:
    # Given a payout that ran to its end; its idempotency record has expired, so the API runs the request again
    store, saga = Store(), Saga()
    closed = Payout(
        payout_id="payout_1",
        seller_id="s1",
        amount=500,
        currency="USD",
        payout_account_version=1,
        destination_last4="6789",
        status=status,  # type: ignore[arg-type]
        failure_code=failure_code,
        created_at="2026-01-01T00:00:00.000000Z",
        updated_at="2026-01-02T00:00:00.000000Z",
    )
    store.items["payout_1"] = closed

    # When the same request arrives again (the seller has funds again)
    again = domain.request_payout(
        PayoutRequest(seller_id="s1", amount=500, currency="USD"),
        payout_id="payout_1",
        store=store,
        balances=Balances({("s1", "USD"): 500}),
        accounts=accounts_for("s1"),
        saga=saga,
    )

    # Then the payout is answered as it is, and no saga starts for it again
    assert again == closed
    assert saga.started == []


@pytest.mark.parametrize(
    "accounts",
    [Accounts(), accounts_for("s1", currency="EUR")],
    ids=["no account", "an account in another currency"],
)
def test_a_payout_without_a_verified_account_in_its_currency_is_refused_before_anything_is_stored(
    accounts: Accounts,
) -> None:
    store, saga = Store(), Saga()
    with pytest.raises(domain.PayoutAccountMissing) as refused:
        domain.request_payout(
            PayoutRequest(seller_id="s1", amount=100, currency="USD"),
            payout_id="payout_1",
            store=store,
            balances=Balances({("s1", "USD"): 500}),
            accounts=accounts,
            saga=saga,
        )
    assert (refused.value.status_code, refused.value.code, refused.value.param) == (
        422,
        "payout_account_missing",
        "seller_id",
    )
    assert (store.items, saga.started) == ({}, [])


def test_a_payout_keeps_the_account_version_it_was_requested_against() -> None:
    store, saga = Store(), Saga()
    accounts = Accounts(stored_account("s1", version=3, last4="0013"))
    request = PayoutRequest(seller_id="s1", amount=500, currency="USD")
    balances = Balances({("s1", "USD"): 500})
    payout = domain.request_payout(
        request, payout_id="payout_1", store=store, balances=balances, accounts=accounts, saga=saga
    )
    assert (payout.payout_account_version, payout.destination_last4) == (3, "0013")
    # the seller changes account while the payout is in flight: a retried request still pays version 3
    accounts.accounts["s1"] = stored_account("s1", version=4, last4="4321")
    domain.request_payout(request, payout_id="payout_1", store=store, balances=balances, accounts=accounts, saga=saga)
    assert [s.payout_account_version for s in saga.started] == [3, 3]
    assert store.items["payout_1"].destination_last4 == "0013"


def test_the_daily_run_leaves_sellers_without_an_account_in_the_currency_until_they_add_one() -> None:
    store, saga = Store(), Saga()
    balances = Balances({("a", "USD"): 10_000, ("b", "USD"): 20_000, ("c", "EUR"): 30_000})
    accounts = Accounts(stored_account("a", "USD"), stored_account("c", "USD"))
    run = domain.run_scheduled_payouts(
        threshold_major=100, day="2026-01-02", store=store, balances=balances, accounts=accounts, saga=saga
    )
    assert [(p.seller_id, p.amount, p.currency) for p in run.started] == [("a", 10_000, "USD")]
    assert list(store.items) == [run.started[0].payout_id]
    # the two balances whose sellers have no account in their currency are counted, not paid
    assert sorted(run.waiting_for_account) == [("b", "USD"), ("c", "EUR")]
