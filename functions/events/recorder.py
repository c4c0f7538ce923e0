"""Recording an outcome as an event, once: the only writer of the events table.

The events table is the outbox of the marketplace events: a new item's own stream record publishes it to
the bus (functions/events/handler.py), so an event is published once per item, however often the change
that caused it is replayed. A replayed or repeated change finds its event stored and adds nothing; one
that would give the same id other content is reported (an alarm), never written over."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from functions.events.sources import EventMapping, SourcedEvent

RecordOutcome = Literal["recorded", "duplicate", "conflict", "ignored"]


class RecordedEvents(Protocol):
    def add(self, sourced: SourcedEvent, *, sequence: str) -> SourcedEvent | None:
        """Store the event unless its id is stored: None when stored now, else the event stored before."""


def sequence_of(recorded_at_ms: int, event_id: str) -> str:
    """The listing order: when the event was recorded (not when its change happened, so that a late record
    never lands before a cursor a reader has passed), then its id. Fixed width: compares as a string."""
    return f"{recorded_at_ms:015d}#{event_id}"


def record_change(
    mapping: EventMapping,
    image: Mapping[str, Any],
    created: int,
    *,
    events: RecordedEvents,
    recorded_at_ms: int,
) -> tuple[RecordOutcome, SourcedEvent | None]:
    sourced = mapping(image, created)
    if sourced is None:
        return "ignored", None
    stored = events.add(sourced, sequence=sequence_of(recorded_at_ms, sourced.event.id))
    if stored is None:
        return "recorded", sourced
    same = stored.tenant_id == sourced.tenant_id and (stored.event.type, stored.event.data) == (
        sourced.event.type,
        sourced.event.data,
    )
    # `created` may differ (another stream record of the same outcome); the first one recorded stands.
    return ("duplicate" if same else "conflict"), stored
