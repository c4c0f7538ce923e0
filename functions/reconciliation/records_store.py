"""Adapters for the records the other row types settle, read only from their services' tables: payouts
(and refunds and disputes, whose tables the same adapter reads once they are wired; see
`RecordTableLayout`), and the settlement bucket's day folders for the deadline check."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from boto3.dynamodb.conditions import Key

from functions.common import decided_index
from functions.common.aws import client
from functions.common.dynamo import items
from functions.reconciliation.domain import sender_of
from functions.reconciliation.models import CHUNK, FileSender, Record
from functions.reconciliation.store import attribute, batch_get
from functions.refund.models import REFUNDS_BY_STATUS

UNBOOKED_STATUS = "{} (orphan charge: outside our books)"
# The payouts table's index of payouts by status and last change (infra/constructs/payouts.py): the
# PAID partition, by the time they were marked paid, is what payout rows settle.
PAYOUTS_BY_STATUS_INDEX = "by_status_updated"


@dataclass(frozen=True)
class RecordTableLayout:
    """Where a service keeps what reconciliation needs of one record kind."""

    key: str  # the attribute holding the record's id (the settlement row's merchant_reference)
    index: str  # a GSI with partition key `status` and sort key `time_attribute`
    settled_statuses: tuple[str, ...]  # the index partitions whose records the rows settle
    time_attribute: str  # when the record reached that status (ISO 8601 UTC, as stored)
    psp_reference: str = "psp_reference"
    fee: str | None = None  # the fee attribute, for kinds whose fee the PSP takes with them
    partition_key: str = ""  # the table's partition key when it is not `key`: ...
    partition_format: str = "{}"  # ... holding the id in this template
    sort_key: tuple[str, str] | None = None  # (name, value) when the table has a sort key
    # A boolean attribute marking records whose money never entered our books (an orphan charge's refund:
    # its charge was never booked, the refund moved no seller money). Their rows must not be booked either:
    # the record's status reads UNBOOKED_STATUS, so its row is a status_mismatch to review, like its charge's.
    unbooked_flag: str | None = None

    def item_key(self, reference: str) -> dict[str, Any]:
        key = {self.partition_key or self.key: {"S": self.partition_format.format(reference)}}
        if self.sort_key is not None:
            key[self.sort_key[0]] = {"S": self.sort_key[1]}
        return key


PAYOUTS = RecordTableLayout(
    key="payout_id", index=PAYOUTS_BY_STATUS_INDEX, settled_statuses=("PAID",), time_attribute="updated_at"
)
# Refunds and disputes, as their services lay them out (each table needs the GSI named here).
REFUNDS = RecordTableLayout(  # REFUND#<refund_id> / REFUND; moved to SUCCEEDED with updated_at
    key="refund_id",
    index=REFUNDS_BY_STATUS,
    settled_statuses=("SUCCEEDED",),
    time_attribute="updated_at",
    psp_reference="psp_refund_id",
    partition_key="pk",
    partition_format="REFUND#{}",
    sort_key=("sk", "REFUND"),
    unbooked_flag="orphan",
)
DISPUTES_OPENED = RecordTableLayout(  # a dispute row: the PSP took amount + fee when the dispute opened
    key="dispute_id",
    index="by_status_created",
    settled_statuses=("OPEN", "WON", "LOST"),
    time_attribute="created_at",
    psp_reference="psp_dispute_id",
    fee="fee",
)
DISPUTES_WON = RecordTableLayout(  # a dispute_reversal row: the amount came back when it was won
    key="dispute_id",
    index="by_status_closed",
    settled_statuses=("WON",),
    time_attribute="closed_at",
    psp_reference="psp_dispute_id",
)


def _flag(item: dict[str, Any], name: str | None) -> bool:
    """A boolean attribute, from the client's typed items ({"BOOL": ...}) or the resource's plain ones."""
    value = item.get(name) if name else None
    return (value.get("BOOL") if isinstance(value, dict) else value) is True


class DynamoRecords:
    """One record kind in its service's table (the reconciliation roles only read it)."""

    def __init__(self, table_name: str, layout: RecordTableLayout) -> None:
        self.table_name = table_name
        self.layout = layout

    def _record(self, item: dict[str, Any]) -> Record:
        layout = self.layout
        status = attribute(item, "status") or ""
        return Record(
            reference=attribute(item, layout.key) or "",
            status=UNBOOKED_STATUS.format(status) if _flag(item, layout.unbooked_flag) else status,
            amount=int(attribute(item, "amount") or 0),
            currency=attribute(item, "currency") or "",
            psp_reference=attribute(item, layout.psp_reference) or None,
            decided_at=attribute(item, layout.time_attribute) if status in layout.settled_statuses else None,
            seller_id=attribute(item, "seller_id") or "",
            fee=int(attribute(item, layout.fee) or 0) if layout.fee else 0,
        )

    def _projection(self) -> str:
        names = [self.layout.key, "#s", "amount", "currency", self.layout.psp_reference, "seller_id"]
        names += [self.layout.time_attribute, *([self.layout.fee] if self.layout.fee else [])]
        names += [self.layout.unbooked_flag] if self.layout.unbooked_flag else []
        return ", ".join(dict.fromkeys(names))

    def records(self, references: Sequence[str]) -> list[Record | None]:
        keys = [self.layout.item_key(reference) for reference in references]
        found = map(self._record, batch_get(self.table_name, keys, self._projection()))
        by_id = {record.reference: record for record in found}
        return list(map(by_id.get, references))

    def settled_between(self, start: datetime, end: datetime) -> Iterator[list[Record]]:
        bounds = decided_index.sort_bound(start), decided_index.sort_bound(end)
        between = Key(self.layout.time_attribute).between(*bounds)
        page: list[Record] = []
        for status in self.layout.settled_statuses:
            condition = Key("status").eq(status) & between
            for item in items(self.table_name, IndexName=self.layout.index, KeyConditionExpression=condition):
                page.append(self._record(item))
                if len(page) == CHUNK:
                    yield page
                    page = []
        if page:
            yield page


class S3DayFiles:
    """The settlement bucket's folder of one day's files: settlements/<day>/ (the PSP's) and its
    payout-provider/ folder (the payout provider's)."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix

    def has_file(self, day: date, sender: FileSender) -> bool:
        pages = (
            client("s3")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=f"{self.prefix}{day.isoformat()}/")
        )
        return any(sender_of(item["Key"]) == sender for page in pages for item in page.get("Contents", []))
