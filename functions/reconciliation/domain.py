"""Settlement-file reconciliation: read the PSP's file as a stream and record one run per S3 object."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Protocol

from pydantic import BaseModel, Field

from functions.common.ids import deterministic_id

SETTLEMENT_COLUMNS = (
    "psp_reference",
    "merchant_reference",
    "type",
    "amount",
    "currency",
    "fee",
    "net",
    "status",
    "created_at",
    "available_on",
)
BREAK_CLASSES = (
    "missing_internal",
    "missing_external",
    "amount_mismatch",
    "currency_mismatch",
    "status_mismatch",
    "duplicate_row",
    "malformed_row",
)


class ObjectRef(BaseModel):
    bucket: str
    key: str
    version: str | None = None
    etag: str | None = None


class Run(BaseModel):
    run_id: str
    source: ObjectRef
    status: str = "COMPLETED"
    error: str | None = None
    rows: int = 0
    matched: int = 0
    breaks: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(BREAK_CLASSES, 0))
    report: ObjectRef | None = None
    created_at: str


def run_id_for(source: ObjectRef) -> str:
    """One run per object version: S3 notifications are at-least-once."""
    return deterministic_id("rr", source.bucket, source.key, source.version or source.etag or "")


class NotASettlementFile(ValueError):
    pass


def settlement_rows(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each data row, streamed; the header must be the contract's."""
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise NotASettlementFile("the file is empty") from None
    except csv.Error as error:
        raise NotASettlementFile(f"the header is not CSV: {error}") from None
    if tuple(h.strip() for h in header) != SETTLEMENT_COLUMNS:
        raise NotASettlementFile("the header is not the settlement file header")
    for fields in reader:
        yield reader.line_num, fields


class RunStore(Protocol):
    def get(self, run_id: str) -> Run | None: ...

    def put(self, run: Run) -> None: ...

    def list_runs(self, limit: int) -> list[Run]: ...
