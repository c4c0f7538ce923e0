"""Balance records: one per ledger account and currency, kept in the same transaction as the entries.

The balances table (partition `currency`, sort `account`) holds the running `debits` and `credits` of
every account, so the trial balance and an account's balance read O(accounts), never the entries.
Sums are 64-bit (functions.common.money.MAX_AGGREGATE_MINOR), not bounded by a per-request maximum."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from functions.ledger.domain import CurrencyTotals, Entry, TrialBalance

PARTITION_KEY = "currency"
SORT_KEY = "account"


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
    """Every balance record, summed from the entries: the one-off backfill of a ledger booked before
    balance records existed."""
    records: dict[tuple[str, str], AccountBalance] = {}
    for entry in entries:
        for change in movements([entry]):
            record = records.setdefault(
                (change.currency, change.account), AccountBalance(currency=change.currency, account=change.account)
            )
            record.debits += change.debits
            record.credits += change.credits
    return [records[key] for key in sorted(records)]


def trial_balance_of(balances: Iterable[AccountBalance]) -> TrialBalance:
    """The trial balance from the balance records: the same totals the entries sum to."""
    totals: dict[str, CurrencyTotals] = defaultdict(CurrencyTotals)
    for balance in balances:
        bucket = totals[balance.currency]
        bucket.debits += balance.debits
        bucket.credits += balance.credits
    return TrialBalance(currencies=dict(totals), balanced=all(t.debits == t.credits for t in totals.values()))
