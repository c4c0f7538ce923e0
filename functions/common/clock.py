"""Time as the domain sees it: an injectable clock and one timestamp format for stored records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """The one format every stored time uses: UTC ISO 8601 with microseconds, always the same width, so
    stored times compare as strings (range queries on indexes rely on it)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
