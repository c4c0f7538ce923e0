"""In-memory stand-ins for reconciliation's ports (functions/reconciliation/ports.py), recording what
they were asked to do."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import IO

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
from functions.reconciliation.ports import RecordSource, RunPorts
from functions.reconciliation.store import SpooledBreaksCsv


class Orders:
    """The executor's orders; records each batch of ids asked for."""

    def __init__(self, orders: Iterable[Order] = ()) -> None:
        self.by_id = {o.payment_order_id: o for o in orders}
        self.calls: list[list[str]] = []

    def orders(self, payment_order_ids: Sequence[str]) -> list[Order | None]:
        self.calls.append(list(payment_order_ids))
        return list(map(self.by_id.get, payment_order_ids))

    def succeeded_between(self, start: datetime, end: datetime) -> Iterator[list[Order]]:
        found = [
            o
            for o in self.by_id.values()
            if o.status == "SUCCEEDED" and o.decided_at and start <= datetime.fromisoformat(o.decided_at) <= end
        ]
        return iter([found] if found else [])


class Records:
    """One row type's records (refunds, payouts, disputes opened or won): those in `settled` statuses
    (with a decision time) are the ones `settled_between` finds."""

    def __init__(self, records: Iterable[Record] = (), *, settled: Iterable[str] = ("SUCCEEDED",)) -> None:
        self.by_id = {r.reference: r for r in records}
        self.settled = frozenset(settled)

    def records(self, references: Sequence[str]) -> list[Record | None]:
        return list(map(self.by_id.get, references))

    def settled_between(self, start: datetime, end: datetime) -> Iterator[list[Record]]:
        found = [
            r
            for r in self.by_id.values()
            if r.status in self.settled and r.decided_at and start <= datetime.fromisoformat(r.decided_at) <= end
        ]
        return iter([found] if found else [])


class Claims:
    """Settlement claims; `settle` refuses a batch whose prior claims changed, as the store's condition does."""

    def __init__(self, claims: Iterable[Claim] = ()) -> None:
        self.by_order: dict[str, Claim] = {c.payment_order_id: c for c in claims}
        self.escalations: dict[str, str] = {}  # order -> the run that escalated its break
        self.written: list[tuple[Claim, Claim | None]] = []

    def claims(self, payment_order_ids: Sequence[str]) -> dict[str, Claim]:
        return {po: self.by_order[po] for po in payment_order_ids if po in self.by_order}

    def settle(self, batch: ClaimBatch) -> None:
        pairs = list(batch.pairs())
        for new, prior in pairs:
            assert self.by_order.get(new.payment_order_id) == prior, "claim changed concurrently"
            self.by_order[new.payment_order_id] = new
        self.written.extend(pairs)

    def open_break(self, claim: Claim) -> None:
        self.by_order.setdefault(claim.payment_order_id, claim)

    def awaiting_before(self, before: datetime) -> Iterator[Claim]:
        return iter(
            [
                c
                for c in self.by_order.values()
                if c.state == "awaiting" and datetime.fromisoformat(c.decided_at) < before
            ]
        )

    def escalate(self, claim: Claim, run_id: str) -> bool:
        if self.by_order[claim.payment_order_id].state != "awaiting":
            return False
        self.by_order[claim.payment_order_id] = claim._replace(state="missing")
        self.escalations[claim.payment_order_id] = run_id
        return True

    def escalated_by(self, run_id: str) -> Iterator[Claim]:
        return iter(
            [
                self.by_order[po]
                for po, by in self.escalations.items()
                if by == run_id and self.by_order[po].state == "missing"
            ]
        )


class Postings:
    """The ledger's postings queue: each `post` call's journals, in order."""

    def __init__(self) -> None:
        self.batches: list[list[JournalPosting]] = []

    def post(self, journals: Sequence[JournalPosting]) -> None:
        self.batches.append(list(journals))

    @property
    def journals(self) -> list[JournalPosting]:
        return [journal for batch in self.batches for journal in batch]

    def booked(self) -> dict[str, JournalPosting]:
        """What the ledger keeps: each journal id (kind + business id) once (a re-sent journal must be the
        same journal). Keyed by business id, prefixed by the kind for any kind but `settlement`."""
        kept: dict[str, JournalPosting] = {}
        for journal in self.journals:
            key = journal.business_id if journal.kind == "settlement" else f"{journal.kind}/{journal.business_id}"
            assert kept.setdefault(key, journal) == journal
        return kept


class Runs:
    def __init__(self) -> None:
        self.by_id: dict[str, Run] = {}
        self.puts: list[Run] = []
        self.deleted: list[str] = []

    def get(self, run_id: str) -> Run | None:
        return self.by_id.get(run_id)

    def delete(self, run_id: str) -> None:
        self.by_id.pop(run_id, None)
        self.deleted.append(run_id)

    def put(self, run: Run) -> None:
        self.by_id[run.run_id] = run
        self.puts.append(run)

    def list_runs(self, limit: int) -> list[Run]:
        return sorted(self.by_id.values(), key=lambda r: r.created_at, reverse=True)[:limit]


class Outcomes:
    def __init__(self) -> None:
        self.by_run: dict[str, dict[int, Outcome]] = {}

    def save(self, run_id: str, outcomes: Sequence[Outcome]) -> None:
        self.by_run.setdefault(run_id, {}).update((o.line, o) for o in outcomes)

    def outcomes(self, run_id: str) -> Iterator[Outcome]:
        stored = self.by_run.get(run_id, {})
        return iter([stored[line] for line in sorted(stored)])


class Review:
    def __init__(self) -> None:
        self.items: list[ReviewItem] = []

    def send(self, items: Sequence[ReviewItem]) -> None:
        self.items.extend(items)


class Files:
    """Settlement objects by key (with their metadata), and the reports written, by key."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.reports: dict[str, tuple[bytes, str]] = {}

    def drop(self, key: str, content: bytes, metadata: dict[str, str] | None = None) -> ObjectRef:
        self.objects[key] = (content, metadata or {})
        return ObjectRef(bucket="settlement-bucket", key=key)

    def head(self, source: ObjectRef) -> ObjectHead | None:
        if source.key not in self.objects:
            return None
        content, metadata = self.objects[source.key]
        return ObjectHead(etag=f"etag-{len(content)}", size=len(content), metadata=metadata)

    def first_line(self, source: ObjectRef) -> str:
        return self.text(source).split("\n", 1)[0].rstrip("\r")

    def lines(self, source: ObjectRef) -> AbstractContextManager[Iterable[str]]:
        return io.StringIO(self.text(source), newline="")

    def text(self, source: ObjectRef) -> str:
        """The object decoded as the store decodes it (undecodable bytes as U+FFFD)."""
        return self.objects[source.key][0].decode("utf-8-sig", errors="replace")

    def put_report(self, target: ObjectRef, body: bytes | IO[bytes], content_type: str) -> None:
        self.reports[target.key] = (body if isinstance(body, bytes) else body.read(), content_type)


class LargeFiles:
    def __init__(self) -> None:
        self.started: list[tuple[str, ObjectRef]] = []
        self.done: list[tuple[str, int]] = []

    def start(self, run_id: str, source: ObjectRef) -> None:
        self.started.append((run_id, source))

    def row_done(self, task_token: str, line: int) -> None:
        self.done.append((task_token, line))


def in_memory_ports(
    orders: Iterable[Order] = (), claims: Iterable[Claim] = (), records: Mapping[str, RecordSource] | None = None
) -> RunPorts:
    """Every port in memory, but the breaks report: the store's own spooled CSV (it does no AWS I/O)."""
    return RunPorts(
        runs=Runs(),
        orders=Orders(orders),
        claims=Claims(claims),
        outcomes=Outcomes(),
        postings=Postings(),
        review=Review(),
        files=Files(),
        large_files=LargeFiles(),
        new_breaks_log=SpooledBreaksCsv,
        records=dict(records or {}),
    )
