"""EventBridge adapter: puts one recorded event on the events bus (source BUS_SOURCE, detail-type the event
type, detail the tenant and the event), where the webhook fan-out and other teams' rules pick it up."""

from __future__ import annotations

from functions.common.aws import client
from functions.events.models import BUS_SOURCE, TenantEvent


class EventBusPublisher:
    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def publish(self, tenant_event: TenantEvent) -> None:
        response = client("events").put_events(
            Entries=[
                {
                    "EventBusName": self.bus_name,
                    "Source": BUS_SOURCE,
                    "DetailType": tenant_event.event.type,
                    "Detail": tenant_event.model_dump_json(),
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            # Raising fails the stream record: Lambda retries it, and the receivers dedupe by event id.
            raise RuntimeError(f"EventBridge refused the event: {entry.get('ErrorCode')}")
