"""Balance records: per ledger account and currency, kept in the same transaction as the entries.

The balances table (partition `currency`, sort `<account>#<shard>`) holds the running `debits` and
`credits` of every account, so the trial balance and an account's balance read O(accounts), never the
entries. An account's balance is the sum of its shards: a journal moves the shard its id picks, so the
house accounts every charge touches (`psp_receivable`) are `SHARDS` items, not one item that concurrent
transactions would conflict on. Sums are 64-bit (functions.common.money.MAX_AGGREGATE_MINOR), not bounded
by a per-request maximum."""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from functions.ledger.domain import CurrencyTotals, Entry, TrialBalance

PARTITION_KEY = "currency"
SORT_KEY = "account"
SHARDS = 8
SHARD_SEPARATOR = "#"  # the last one in a sort key ends the account name


def record_key(account: str, journal_id: str) -> str:
    """The sort key of the shard of `account` that the journal `journal_id` moves."""
    return f"{account}{SHARD_SEPARATOR}{zlib.crc32(journal_id.encode()) % SHARDS}"


def account_of(record_key: str) -> str:
    return record_key.rpartition(SHARD_SEPARATOR)[0] or record_key


def shard_prefix(account: str) -> str:
    return account + SHARD_SEPARATOR


class AccountBalance(BaseModel):
    currency: str
    account: str
    debits: int = 0
    credits: int = 0

    @property
    def credit_balance(self) -> int:
        """Credits minus debits: what a liability account (a seller payable, a payout in transit) holds."""
        return self.credits - self.debits


def movements(entries: Sequence[Entry]) -> list[AccountBalance]:
    """What one journal adds to each (currency, account) balance: one change per account, because a
    transaction may not touch one item twice."""
    totals: dict[tuple[str, str], AccountBalance] = {}
    for entry in entries:
        key = (entry.currency, entry.account)
        change = totals.setdefault(key, AccountBalance(currency=entry.currency, account=entry.account))
        if entry.direction == "debit":
            change.debits += entry.amount
        else:
            change.credits += entry.amount
    return [totals[key] for key in sorted(totals)]


def rebuilt(entries: Iterable[Entry]) -> list[AccountBalance]:
    """Every account's balance, summed from the entries: the one-off backfill of a ledger booked before
    balance records existed."""
    return summed(change for entry in entries for change in movements([entry]))


def summed(changes: Iterable[AccountBalance]) -> list[AccountBalance]:
    """Changes or records of the same (currency, account) added up: e.g. an account's shards as one."""
    totals: dict[tuple[str, str], AccountBalance] = {}
    for change in changes:
        key = (change.currency, change.account)
        total = totals.setdefault(key, AccountBalance(currency=change.currency, account=change.account))
        total.debits += change.debits
        total.credits += change.credits
    return [totals[key] for key in sorted(totals)]


def trial_balance_of(balances: Iterable[AccountBalance]) -> TrialBalance:
    """The trial balance from the balance records: the same totals the entries sum to."""
    totals: dict[str, CurrencyTotals] = defaultdict(CurrencyTotals)
    for balance in balances:
        bucket = totals[balance.currency]
        bucket.debits += balance.debits
        bucket.credits += balance.credits
    return TrialBalance(currencies=dict(totals), balanced=all(t.debits == t.credits for t in totals.values()))
