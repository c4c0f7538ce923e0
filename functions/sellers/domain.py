"""Sellers' payout accounts: each PUT stores a new immutable version, its numbers sealed under the
accounts key and bound to (seller_id, version); reads show the last four characters only."""

from __future__ import annotations

from typing import Protocol

from functions.common.clock import Clock, iso, utc_now
from functions.common.errors import Conflict, InvalidRequest, NotFound
from functions.sellers.models import (
    ROUTING_NUMBER_COUNTRIES,
    BankAccount,
    BankAccountNumbers,
    PayoutAccount,
    PayoutAccountRequest,
)

# Concurrent PUTs for one seller race on the next version number; the loser reads again and retries.
PUT_ATTEMPTS = 3


class AccountSealer(Protocol):
    def seal(self, secret: str, *, seller_id: str, version: str) -> bytes: ...

    def open(self, ciphertext: bytes, *, seller_id: str, version: str) -> str: ...


class PayoutAccountStore(Protocol):
    def current(self, seller_id: str) -> PayoutAccount | None: ...

    def version(self, seller_id: str, version: int) -> PayoutAccount | None: ...

    def add_version(self, account: PayoutAccount, *, previous: int | None) -> bool:
        """Store `account` as the seller's current account; False if the current version is no longer
        `previous` (another PUT won)."""


def numbers_of(request: PayoutAccountRequest) -> BankAccountNumbers:
    """The account's numbers, once the combination suits the country (each checksum is the model's)."""
    if request.iban is not None:
        if request.account_number is not None or request.routing_number is not None:
            raise InvalidRequest("Send an IBAN or an account and routing number, not both.", param="iban")
        if request.country in ROUTING_NUMBER_COUNTRIES:
            raise InvalidRequest(f"{request.country} accounts take account_number and routing_number.", param="iban")
        return BankAccountNumbers(iban=request.iban)
    if request.country not in ROUTING_NUMBER_COUNTRIES:
        raise InvalidRequest(f"{request.country} accounts take an IBAN.", param="iban")
    if request.account_number is None:
        raise InvalidRequest("account_number is required with routing_number.", param="account_number")
    if request.routing_number is None:
        raise InvalidRequest("routing_number is required with account_number.", param="routing_number")
    return BankAccountNumbers(account_number=request.account_number, routing_number=request.routing_number)


def put_payout_account(
    seller_id: str,
    request: PayoutAccountRequest,
    *,
    store: PayoutAccountStore,
    sealer: AccountSealer,
    changed_by: str | None = None,
    now: Clock = utc_now,
) -> PayoutAccount:
    numbers = numbers_of(request)
    for _ in range(PUT_ATTEMPTS):
        current = store.current(seller_id)
        previous = None if current is None else current.version
        version = (previous or 0) + 1
        account = PayoutAccount(
            seller_id=seller_id,
            version=version,
            changed_by=changed_by,
            country=request.country,
            currency=request.currency,
            account_holder=request.account_holder,
            last4=numbers.last4(),
            sealed_numbers=sealer.seal(numbers.sealed_text(), seller_id=seller_id, version=str(version)),
            created_at=iso(now()),
        )
        if store.add_version(account, previous=previous):
            return account
    raise Conflict("The payout account changed while this request was stored; send it again.", param="seller_id")


def get_seller(seller_id: str, *, store: PayoutAccountStore) -> PayoutAccount:
    account = store.current(seller_id)
    if account is None:
        raise NotFound(f"No seller {seller_id} with a payout account.", param="seller_id")
    return account


def open_destination(seller_id: str, version: int, *, store: PayoutAccountStore, sealer: AccountSealer) -> BankAccount:
    """The bank account a payout pays to: the version it was requested against, never a later one."""
    account = store.version(seller_id, version)
    if account is None:
        raise LookupError(f"seller {seller_id} has no payout account version {version}")
    numbers = BankAccountNumbers.model_validate_json(
        sealer.open(account.sealed_numbers, seller_id=seller_id, version=str(version))
    )
    return BankAccount(
        account_holder_name=account.account_holder, country=account.country, currency=account.currency, numbers=numbers
    )
