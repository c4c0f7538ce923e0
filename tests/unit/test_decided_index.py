"""The sharded index of succeeded orders: which partitions a span of time covers, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from functions.common import decided_index


def test_the_shards_of_a_span_cover_every_hour_it_touches_in_utc() -> None:
    plus_two = datetime(2026, 5, 1, 15, 59, tzinfo=timezone(timedelta(hours=2)))  # 13:59 UTC
    shards = list(decided_index.shards_between(plus_two, datetime(2026, 5, 1, 14, 0, 1, tzinfo=UTC)))
    assert shards == [f"2026-05-01T13#{s}" for s in range(decided_index.SHARDS)] + [
        f"2026-05-01T14#{s}" for s in range(decided_index.SHARDS)
    ]
    assert decided_index.decided_shard("po_1", "2026-05-01T13:59:59.000001+00:00").startswith("2026-05-01T13#")
    assert decided_index.sort_bound(datetime(2026, 5, 1, 17, 0, tzinfo=timezone(timedelta(hours=2)))) == (
        "2026-05-01T15:00:00.000000+00:00"
    )
