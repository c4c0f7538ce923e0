"""Reading ledger entries in tests."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from functions.ledger.domain import Entry


def credit_balance(entries: Iterable[Entry]) -> dict[str, int]:
    """Credits minus debits per currency: the balance of a liability account such as a seller payable."""
    balance: dict[str, int] = defaultdict(int)
    for entry in entries:
        balance[entry.currency] += entry.amount if entry.direction == "credit" else -entry.amount
    return dict(balance)
