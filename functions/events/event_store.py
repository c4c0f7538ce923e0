"""DynamoDB adapter for the events table: one item per event (key `event_id`), listed per tenant (and per
tenant and type) in recording order through two indexes, never by a Scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from functions.common.dynamo import is_condition_failure, plain, table
from functions.events.models import Event
from functions.events.sources import SourcedEvent

PARTITION_KEY = "event_id"
BY_TENANT_INDEX = "by_tenant"
BY_TENANT_TYPE_INDEX = "by_tenant_type"
TENANT_ATTRIBUTE = "tenant_id"
TENANT_TYPE_ATTRIBUTE = "tenant_type"
SEQUENCE_ATTRIBUTE = "sequence"


@dataclass(frozen=True)
class StoredEventRecord:
    tenant_id: str
    sequence: str
    event: Event


def tenant_type(tenant_id: str, event_type: str) -> str:
    return f"{tenant_id}#{event_type}"


def event_item(sourced: SourcedEvent, *, sequence: str) -> dict[str, Any]:
    event = sourced.event
    return {
        PARTITION_KEY: event.id,
        TENANT_ATTRIBUTE: sourced.tenant_id,
        TENANT_TYPE_ATTRIBUTE: tenant_type(sourced.tenant_id, event.type),
        SEQUENCE_ATTRIBUTE: sequence,
        "type": event.type,
        "created": event.created,
        # The event as one JSON string: listed and delivered exactly as recorded.
        "payload": event.model_dump_json(),
    }


def record_of(item: dict[str, Any]) -> StoredEventRecord:
    item = plain(item)
    return StoredEventRecord(
        tenant_id=str(item[TENANT_ATTRIBUTE]),
        sequence=str(item[SEQUENCE_ATTRIBUTE]),
        event=Event.model_validate_json(item["payload"]),
    )


class DynamoEventStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def add(self, sourced: SourcedEvent, *, sequence: str) -> SourcedEvent | None:
        try:
            table(self.table_name).put_item(
                Item=event_item(sourced, sequence=sequence), ConditionExpression=Attr(PARTITION_KEY).not_exists()
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            stored = self.get(sourced.event.id)
            if stored is None:  # pragma: no cover - the condition said it exists, and events are never deleted
                raise RuntimeError(f"event {sourced.event.id} vanished") from error
            return SourcedEvent(tenant_id=stored.tenant_id, event=stored.event)
        return None

    def get(self, event_id: str) -> StoredEventRecord | None:
        item = table(self.table_name).get_item(Key={PARTITION_KEY: event_id}, ConsistentRead=True).get("Item")
        return None if item is None else record_of(item)

    def after(self, tenant_id: str, *, event_type: str | None, sequence: str | None, limit: int) -> list[Event]:
        if event_type is None:
            index, condition = BY_TENANT_INDEX, Key(TENANT_ATTRIBUTE).eq(tenant_id)
        else:
            index, condition = BY_TENANT_TYPE_INDEX, Key(TENANT_TYPE_ATTRIBUTE).eq(tenant_type(tenant_id, event_type))
        if sequence is not None:
            condition = condition & Key(SEQUENCE_ATTRIBUTE).gt(sequence)
        page = table(self.table_name).query(
            IndexName=index, KeyConditionExpression=condition, ScanIndexForward=True, Limit=limit
        )
        return [record_of(item).event for item in page["Items"]]
