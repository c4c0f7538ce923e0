"""Pay-outs: accept a request against the seller's available balance and start the saga.

The API's balance check is a fast refusal (422 insufficient_funds); the saga's first state is the
authoritative one - a conditional reservation in the wallet - so concurrent pay-outs can never
overdraw: the one that loses the race ends FAILED with failure_code insufficient_funds."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from functions.common.clock import Clock, iso, utc_now
from functions.common.errors import BusinessRuleViolation, NotFound
from functions.common.ids import deterministic_id
from functions.common.money import exponent, max_amount
from functions.payout.models import TERMINAL_PAYOUT_STATUSES, Payout, PayoutRequest, SagaInput
from functions.sellers.models import PayoutAccount


class InsufficientFunds(BusinessRuleViolation):
    code = "insufficient_funds"


class PayoutAccountMissing(BusinessRuleViolation):
    code = "payout_account_missing"


class PayoutAccounts(Protocol):
    def current(self, seller_id: str) -> PayoutAccount | None:
        """The seller's payout account as it is now (sellers service, functions/sellers)."""


class PayoutStore(Protocol):
    def insert(self, payout: Payout) -> bool:
        """Store a new payout; False if one with this id exists already."""

    def get(self, payout_id: str) -> Payout | None: ...


class Balances(Protocol):
    def available(self, seller_id: str, currency: str) -> int: ...

    def balances_at_least(self, minimum: Callable[[str], int]) -> Iterable[tuple[str, str, int]]:
        """(seller_id, currency, available) for every balance with available >= minimum(currency)."""


class Saga(Protocol):
    def start(self, saga_input: SagaInput) -> None:
        """Start the pay-out saga named after the payout id; starting it twice is harmless."""


def payout_id_for(caller: str, idempotency_key: str) -> str:
    # Derived from the caller and its Idempotency-Key so a retry after a crash converges on the same
    # payout, and two callers' equal keys never meet.
    return deterministic_id("payout", caller, idempotency_key)


def scheduled_payout_id(seller_id: str, currency: str, day: str) -> str:
    # One scheduled payout per seller, currency and day, however often the rule fires.
    return deterministic_id("payout", "scheduled", seller_id, currency, day)


def request_payout(
    request: PayoutRequest,
    *,
    payout_id: str,
    store: PayoutStore,
    balances: Balances,
    accounts: PayoutAccounts,
    saga: Saga,
    trigger: Literal["api", "schedule"] = "api",
    now: Clock = utc_now,
) -> Payout:
    existing = store.get(payout_id)
    if existing is None:
        account = accounts.current(request.seller_id)
        if account is None or account.status != "VERIFIED" or account.currency != request.currency:
            raise PayoutAccountMissing(
                f"Seller {request.seller_id} has no verified payout account in {request.currency}.", param="seller_id"
            )
        available = balances.available(request.seller_id, request.currency)
        # A refund may leave `available` at or below zero: no payout until credits bring it back above.
        if available <= 0 or request.amount > available:
            raise InsufficientFunds(
                f"The available balance ({available}) is below the payout amount ({request.amount}).", param="amount"
            )
        stamp = iso(now())
        payout = Payout(
            payout_id=payout_id,
            seller_id=request.seller_id,
            amount=request.amount,
            currency=request.currency,
            # The account version the payout pays to: a later change of account never redirects it.
            payout_account_version=account.version,
            destination_last4=account.last4,
            trigger=trigger,
            created_at=stamp,
            updated_at=stamp,
        )
        if not store.insert(payout):
            payout = store.get(payout_id) or payout
    elif existing.status in TERMINAL_PAYOUT_STATUSES:
        # Closed: answered as it is, never run again (the API's idempotency record may have expired, and
        # Step Functions keeps an execution name unique for 90 days only).
        return existing
    else:
        payout = existing
    # Started on every attempt until the payout closes: a crash between storing and starting must not
    # strand the payout, and a duplicate start with the same name is a no-op.
    saga.start(
        SagaInput(
            payout_id=payout.payout_id,
            seller_id=payout.seller_id,
            amount=payout.amount,
            currency=payout.currency,
            payout_account_version=payout.payout_account_version,
        )
    )
    return payout


def get_payout(payout_id: str, *, store: PayoutStore) -> Payout:
    payout = store.get(payout_id)
    if payout is None:
        raise NotFound(f"No payout {payout_id}.", param="payout_id")
    return payout


@dataclass
class ScheduledRun:
    started: list[Payout] = field(default_factory=list)
    # (seller_id, currency) of balances due a payout whose seller has no verified account in that currency
    waiting_for_account: list[tuple[str, str]] = field(default_factory=list)


def threshold_minor(threshold_major: int, currency: str) -> int:
    return int(threshold_major * 10 ** exponent(currency))


def run_scheduled_payouts(
    *,
    threshold_major: int,
    day: str,
    store: PayoutStore,
    balances: Balances,
    accounts: PayoutAccounts,
    saga: Saga,
    now: Clock = utc_now,
) -> ScheduledRun:
    """Pay out the whole available balance of every seller at or above the threshold, once per day. Sellers
    without a verified account in the currency are left until they add one, and counted."""
    run = ScheduledRun()
    for seller_id, currency, available in balances.balances_at_least(lambda c: threshold_minor(threshold_major, c)):
        request = PayoutRequest(seller_id=seller_id, amount=min(available, max_amount(currency)), currency=currency)
        try:
            run.started.append(
                request_payout(
                    request,
                    payout_id=scheduled_payout_id(seller_id, currency, day),
                    store=store,
                    balances=balances,
                    accounts=accounts,
                    saga=saga,
                    trigger="schedule",
                    now=now,
                )
            )
        except InsufficientFunds:
            continue  # the balance moved since the scan (another payout); tomorrow's run will see it
        except PayoutAccountMissing:
            run.waiting_for_account.append((seller_id, currency))  # nowhere to pay yet: looked at again tomorrow
    return run
