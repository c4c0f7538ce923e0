"""A run's tally: its counts and sums, its breaks (each to the breaks report, the permanent ones for
review), and the completed run record made from it. Nothing in it grows with the file but the counters:
the report is the store's spool, and review items are capped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from functions.common.clock import iso
from functions.reconciliation.classify import ChunkResult
from functions.reconciliation.models import BREAK_CLASSES, Outcome, ReviewItem, Run
from functions.reconciliation.ports import BreaksLog
from functions.reconciliation.settlement_file import INCOMING_TYPES

REVIEW_CAP = 1000  # review items per run; beyond that one summary item points at the report


@dataclass
class Tally:
    run_id: str
    breaks_log: BreaksLog
    rows: int = 0
    matched: int = 0
    breaks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BREAK_CLASSES, 0))
    temporary: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BREAK_CLASSES, 0))
    closed_temporary: int = 0
    settled_late: int = 0
    escalated: int = 0
    settled_amounts: dict[str, int] = field(default_factory=dict)
    fees: dict[str, int] = field(default_factory=dict)
    paid_out: dict[str, int] = field(default_factory=dict)
    paid_out_fees: dict[str, int] = field(default_factory=dict)
    first_created: datetime | None = None
    cutoff: datetime | None = None
    review: list[ReviewItem] = field(default_factory=list)
    review_overflow: int = 0

    def merge(self, chunk: ChunkResult) -> None:
        """A chunk of the stream path: matched rows arrive as sums, every other row as an outcome."""
        self.rows += chunk.rows
        self.matched += chunk.matched
        self.closed_temporary += chunk.closed_temporary
        self.settled_late += chunk.settled_late
        for ours, theirs in (
            (self.settled_amounts, chunk.settled_amounts),
            (self.fees, chunk.fees),
            (self.paid_out, chunk.paid_out),
            (self.paid_out_fees, chunk.paid_out_fees),
        ):
            for currency, amount in theirs.items():
                ours[currency] = ours.get(currency, 0) + amount
        if chunk.first_created is not None and (self.first_created is None or chunk.first_created < self.first_created):
            self.first_created = chunk.first_created
        if chunk.last_created is not None and (self.cutoff is None or chunk.last_created > self.cutoff):
            self.cutoff = chunk.last_created
        for o in chunk.outcomes:
            if o.klass is not None:
                self.add_break(o.klass, o.line, o.psp_reference, o.merchant_reference, o.detail, temporary=o.temporary)

    def add(self, outcome: Outcome) -> None:
        """One row's outcome (the distributed path's, folded by the finaliser)."""
        self.rows += 1
        created = outcome.created_at
        if created is not None:
            if self.cutoff is None or created > self.cutoff:
                self.cutoff = created
            if self.first_created is None or created < self.first_created:
                self.first_created = created
        if outcome.closed == "temporary":
            self.closed_temporary += 1
        elif outcome.closed == "permanent":
            self.settled_late += 1
        if outcome.klass is None:
            self.matched += 1
            incoming = (outcome.kind or "charge") in INCOMING_TYPES
            amounts, fees = (self.settled_amounts, self.fees) if incoming else (self.paid_out, self.paid_out_fees)
            amounts[outcome.currency] = amounts.get(outcome.currency, 0) + outcome.amount
            fees[outcome.currency] = fees.get(outcome.currency, 0) + outcome.fee
            return
        self.add_break(
            outcome.klass,
            outcome.line,
            outcome.psp_reference,
            outcome.merchant_reference,
            outcome.detail,
            temporary=outcome.temporary,
        )

    def add_break(
        self,
        klass: str,
        line: int | None,
        psp_reference: str,
        merchant_reference: str,
        detail: str,
        *,
        temporary: bool = False,
    ) -> None:
        (self.temporary if temporary else self.breaks)[klass] += 1
        self.breaks_log.add(klass, temporary, line, psp_reference, merchant_reference, detail)
        if temporary:
            return  # re-checked automatically by the next file
        if len(self.review) < REVIEW_CAP:
            self.review.append(
                ReviewItem(
                    run_id=self.run_id,
                    break_class=klass,
                    line=line,
                    psp_reference=psp_reference,
                    merchant_reference=merchant_reference,
                    detail=detail,
                )
            )
        else:
            self.review_overflow += 1

    def review_items(self, report_key: str) -> list[ReviewItem]:
        """What goes to the review queue, each pointing at the breaks report; one item for the rest."""
        items = [item.model_copy(update={"report_key": report_key}) for item in self.review]
        if self.review_overflow:
            items.append(
                ReviewItem(
                    run_id=self.run_id,
                    break_class="more_breaks",
                    line=None,
                    psp_reference="",
                    merchant_reference="",
                    detail=f"{self.review_overflow} more breaks: see the breaks report",
                    report_key=report_key,
                )
            )
        return items


def complete_run(run: Run, tally: Tally, *, completed_at: str) -> Run:
    return run.model_copy(
        update={
            "status": "COMPLETED",
            "rows": tally.rows,
            "matched": tally.matched,
            "breaks": dict(tally.breaks),
            "temporary_breaks": dict(tally.temporary),
            "closed_temporary": tally.closed_temporary,
            "settled_late": tally.settled_late,
            "escalated": tally.escalated,
            "settled_amounts": dict(tally.settled_amounts),
            "fees": dict(tally.fees),
            "paid_out": dict(tally.paid_out),
            "paid_out_fees": dict(tally.paid_out_fees),
            "cutoff": iso(tally.cutoff) if tally.cutoff else None,
            "completed_at": completed_at,
        }
    )
