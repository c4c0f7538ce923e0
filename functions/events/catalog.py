"""GET /v1/events: a tenant's events oldest first, by type if asked, after a cursor (an event id)."""

from __future__ import annotations

from typing import Protocol

from functions.common.errors import NotFound
from functions.events.models import Event, EventList


class StoredEvent(Protocol):
    @property
    def tenant_id(self) -> str: ...

    @property
    def sequence(self) -> str: ...

    @property
    def event(self) -> Event: ...


class EventReader(Protocol):
    def get(self, event_id: str) -> StoredEvent | None: ...

    def after(self, tenant_id: str, *, event_type: str | None, sequence: str | None, limit: int) -> list[Event]:
        """Up to `limit` events of the tenant (of the type, if given) recorded after `sequence`, oldest first."""


def list_events(
    *, tenant_id: str, event_type: str | None, starting_after: str | None, limit: int, reader: EventReader
) -> EventList:
    sequence = None
    if starting_after is not None:
        cursor = reader.get(starting_after)
        if cursor is None or cursor.tenant_id != tenant_id:
            # A cursor is an id: one that names nothing (or another tenant's event) is a missing resource.
            raise NotFound("starting_after names no event of yours.", param="starting_after")
        sequence = cursor.sequence
    # One more than asked: whether there is more, without a second read.
    events = reader.after(tenant_id, event_type=event_type, sequence=sequence, limit=limit + 1)
    return EventList(data=events[:limit], has_more=len(events) > limit)
