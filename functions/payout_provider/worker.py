"""The payout provider's client behind its own circuit breaker (circuit name `payout-provider`): an outage
of the provider fails payouts fast, and never opens the PSP's circuit for charges and refunds."""

from __future__ import annotations

from functions.payout_provider.client import PayoutProviderClient
from functions.payout_provider.models import PayoutResult
from functions.payout_provider.settings import PayoutProviderSettings
from functions.psp.breaker import CircuitBreaker, GuardedCalls
from functions.psp.settings import QueueWorkerSettings
from functions.psp.worker import circuit_breaker
from functions.sellers.models import BankAccount


class GuardedPayoutProvider(GuardedCalls):
    def __init__(self, provider: PayoutProviderClient, breaker: CircuitBreaker) -> None:
        super().__init__(breaker)
        self._provider = provider

    def create_payout(
        self, *, idempotency_key: str, amount: int, currency: str, destination: BankAccount, payee: str
    ) -> PayoutResult:
        return self._call(
            lambda: self._provider.create_payout(
                idempotency_key=idempotency_key, amount=amount, currency=currency, destination=destination, payee=payee
            )
        )


class PayoutWorkerSettings(PayoutProviderSettings, QueueWorkerSettings):
    """A queue worker that calls the payout provider."""


def guarded_payout_provider(settings: PayoutWorkerSettings) -> GuardedPayoutProvider:
    return GuardedPayoutProvider(PayoutProviderClient.from_settings(settings), circuit_breaker(settings))
