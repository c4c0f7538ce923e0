"""The executor table's sparse index of succeeded orders, by decision hour, written in shards.

The executor gives an order `decided_shard` only when it succeeds, so the index holds just what
reconciliation reads. Its partition is the decision hour plus one of `SHARDS` shards (from the order id):
a busy hour's writes spread over several partitions instead of one hot `SUCCEEDED` key, and a reader
queries every shard of every hour it needs, by `decided_at`."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from functions.common.clock import iso

INDEX = "by_decided_shard"
ATTRIBUTE = "decided_shard"
SORT_KEY = "decided_at"
SHARDS = 8
# The same layout for orders decided FAILED, on their own attribute and index (the money auditor reads it:
# a failed order must have no charge at the PSP, or a recorded orphan charge).
FAILED_INDEX = "by_failed_shard"
FAILED_ATTRIBUTE = "failed_shard"


def decided_shard(payment_order_id: str, decided_at: str) -> str:
    """`2026-05-01T12#3`: the decision's UTC hour (decided_at is UTC ISO 8601) and the order's shard."""
    return f"{decided_at[:13]}#{zlib.crc32(payment_order_id.encode()) % SHARDS}"


def shards_between(start: datetime, end: datetime) -> Iterator[str]:
    """Every partition that can hold a decision in [start, end]."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    last = end.astimezone(UTC)
    while hour <= last:
        for shard in range(SHARDS):
            yield f"{hour.isoformat()[:13]}#{shard}"
        hour += timedelta(hours=1)


def sort_bound(moment: datetime) -> str:
    """A time as `decided_at` is written (UTC ISO 8601), so strings compare as times."""
    return iso(moment)
