"""The ports reconciliation runs over (store.py has the AWS adapters; tests use in-memory ones)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Protocol

from functions.common.events import JournalPosting
from functions.reconciliation.models import (
    Claim,
    ClaimBatch,
    ObjectHead,
    ObjectRef,
    Order,
    Outcome,
    Record,
    ReviewItem,
    Run,
)


class RunStore(Protocol):
    def get(self, run_id: str) -> Run | None: ...

    def put(self, run: Run) -> None: ...

    def list_runs(self, limit: int) -> list[Run]: ...

    def delete(self, run_id: str) -> None:
        """Remove a record (a day's MISSING record once its file arrives); no-op if there is none."""


class OrderSource(Protocol):
    def orders(self, payment_order_ids: Sequence[str]) -> list[Order | None]:
        """Each id's order (None if there is none), in the order asked."""

    def succeeded_between(self, start: datetime, end: datetime) -> Iterator[list[Order]]:
        """SUCCEEDED orders decided in [start, end], in pages of at most CHUNK."""


class RecordSource(Protocol):
    """Our records that one settlement row type settles (refunds, payouts, disputes opened or won)."""

    def records(self, references: Sequence[str]) -> list[Record | None]:
        """Each id's record (None if there is none), in the order asked."""

    def settled_between(self, start: datetime, end: datetime) -> Iterator[list[Record]]:
        """Records that reached the settled state (row_kinds.ROW_KINDS) in [start, end], in pages of at
        most CHUNK."""


class ClaimStore(Protocol):
    def claims(self, payment_order_ids: Sequence[str]) -> dict[str, Claim]: ...

    def settle(self, batch: ClaimBatch) -> None:
        """Write each new claim only if the stored one is still the one read; raise if any changed."""

    def open_break(self, claim: Claim) -> None:
        """Record an awaiting or missing break for an order that has no claim (no-op if it has one)."""

    def awaiting_before(self, before: datetime) -> Iterator[Claim]: ...

    def escalate(self, claim: Claim, run_id: str) -> bool:
        """awaiting -> missing, escalated by `run_id`; False if it is no longer awaiting."""

    def escalated_by(self, run_id: str) -> Iterator[Claim]:
        """The claims `run_id` escalated that are still missing (a retried run finds its own)."""


class PostingSink(Protocol):
    def post(self, journals: Sequence[JournalPosting]) -> None:
        """Send each to the ledger, which books each journal once."""


class OutcomeStore(Protocol):
    """Per-row outcomes of a distributed run: the row workers save them, the finaliser folds them."""

    def save(self, run_id: str, outcomes: Sequence[Outcome]) -> None: ...

    def outcomes(self, run_id: str) -> Iterator[Outcome]: ...


class ReviewSink(Protocol):
    def send(self, items: Sequence[ReviewItem]) -> None: ...


class BreaksLog(Protocol):
    """A run's breaks report, one line per break however many there are (the store spools it)."""

    def add(
        self, klass: str, temporary: bool, line: int | None, psp_reference: str, merchant_reference: str, detail: str
    ) -> None: ...

    def contents(self) -> IO[bytes]:
        """The report so far, from its start, as a stream to upload."""


class SettlementFiles(Protocol):
    """The settlement objects (read as a stream, never whole) and the reports written next to them."""

    def head(self, source: ObjectRef) -> ObjectHead | None:
        """None if the object (or that version of it) does not exist."""

    def first_line(self, source: ObjectRef) -> str: ...

    def lines(self, source: ObjectRef) -> AbstractContextManager[Iterable[str]]:
        """The object's lines, decoded as they are read; closed when the context ends."""

    def put_report(self, target: ObjectRef, body: bytes | IO[bytes], content_type: str) -> None: ...


class LargeFileRuns(Protocol):
    """The Distributed Map that reconciles a large file row by row."""

    def start(self, run_id: str, source: ObjectRef) -> None:
        """Start the run's state machine execution (a second start of the same run is a no-op)."""

    def row_done(self, task_token: str, line: int) -> None:
        """Report one row's task done to the state machine."""


@dataclass(frozen=True)
class RunPorts:
    """Everything a run reads and writes, built once per function instance."""

    runs: RunStore
    orders: OrderSource
    claims: ClaimStore
    outcomes: OutcomeStore
    postings: PostingSink
    review: ReviewSink
    files: SettlementFiles
    large_files: LargeFileRuns
    new_breaks_log: Callable[[], BreaksLog]  # a fresh, empty report per run
    # The sources of the other row types, by type (row_kinds.RECORD_TYPES); a type without one has no
    # records of ours, so its rows are missing_internal.
    records: Mapping[str, RecordSource] = field(default_factory=dict)
