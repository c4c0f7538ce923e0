"""What reconciliation works on: the run record, the executor's orders, settlement claims, row outcomes,
review items, and the settings a run follows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

BREAK_CLASSES = (
    "missing_internal",
    "missing_external",
    "amount_mismatch",
    "currency_mismatch",
    "status_mismatch",
    "duplicate_row",
    "malformed_row",
)
CHUNK = 100  # rows per batch read/write (BatchGetItem and TransactWriteItems take at most 100 items)

ClaimState = Literal["settled", "awaiting", "missing"]
# Who sent a settlement file: the pay-in PSP, or the payout provider (settlements/<day>/payout-provider/...).
# Each settles its own row types (row_kinds.ROW_KINDS).
FileSender = Literal["psp", "payout_provider"]
FailureReason = Literal[
    "balance_mismatch",  # the rows do not sum to the file's summary rows
    "summary_missing",  # no summary row: a truncated file, or not a complete day file
    "not_a_settlement_file",
    "object_missing",
    "map_failed",
    "file_missing",  # (MISSING) no file for the day by the deadline
]


class ObjectRef(BaseModel):
    bucket: str
    key: str
    version: str | None = None
    etag: str | None = None


class ObjectHead(NamedTuple):
    """What S3 says about a settlement object before it is read."""

    etag: str
    size: int
    metadata: dict[str, str]


class Run(BaseModel):
    run_id: str
    source: ObjectRef
    # MISSING: no file arrived for `day` by the deadline (a record of its own, replaced when one arrives)
    status: Literal["RUNNING", "COMPLETED", "FAILED", "MISSING"] = "RUNNING"
    mode: Literal["stream", "distributed"] = "stream"
    day: str | None = None  # the settlement day the file is for (from its key settlements/<day>/...)
    sender: FileSender = "psp"  # who sent the file (from its key too): the row types it may carry
    error: str | None = None
    reason: FailureReason | None = None  # why the run FAILED (or why the day is MISSING), as a code
    rows: int = 0
    matched: int = 0
    breaks: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(BREAK_CLASSES, 0))
    temporary_breaks: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(BREAK_CLASSES, 0))
    closed_temporary: int = 0  # temporary breaks of earlier runs this file settled
    settled_late: int = 0  # permanent missing_external breaks of earlier runs this file settled
    escalated: int = 0  # temporary breaks of earlier runs this file should have carried but did not
    settled_amounts: dict[str, int] = Field(default_factory=dict)  # gross settled in per currency
    fees: dict[str, int] = Field(default_factory=dict)
    # money out the PSP took from our balance (refunds, payouts, disputes): receivable cleared, and fees
    paid_out: dict[str, int] = Field(default_factory=dict)
    paid_out_fees: dict[str, int] = Field(default_factory=dict)
    cutoff: str | None = None
    report: ObjectRef | None = None
    breaks_report: ObjectRef | None = None
    created_at: str
    completed_at: str | None = None


class RunChange(NamedTuple):
    """A run after one step of its lifecycle, and what that step did to it."""

    run: Run
    change: Literal["completed", "failed", "distributed", "unchanged"]


@dataclass(frozen=True)
class RunPolicy:
    grace: timedelta  # orders decided this long after a file's cut-off are expected in the next file
    report_prefix: str  # reports of run <id> go under <report_prefix><id>/
    distributed_threshold_bytes: int  # larger files fan out over the Distributed Map


class Order(NamedTuple):
    """What the executor recorded for one payment order (what a `charge` row settles)."""

    payment_order_id: str
    status: str
    amount: int
    currency: str
    psp_reference: str | None
    decided_at: str | None
    seller_id: str = ""


class Record(NamedTuple):
    """What we recorded for a refund, payout or dispute: what a row of another type settles."""

    reference: str  # our refund, payout or dispute id (the row's merchant_reference)
    status: str
    amount: int
    currency: str
    psp_reference: str | None
    decided_at: str | None  # when it reached the state the file settles (succeeded, paid, opened, won)
    seller_id: str = ""
    fee: int = 0  # a dispute's fee, which the PSP takes with it (the seller bears it)


class Claim(NamedTuple):
    """The settlement state of one order (or other record): settled by a row, or an open missing_external
    break. `payment_order_id` is the claim key (row_kinds.claim_key): the order id for charges,
    `<type>#<reference>` for the other row types."""

    payment_order_id: str
    state: ClaimState
    run_id: str
    line: int = 0
    psp_reference: str = ""
    decided_at: str = ""


class ClaimBatch(NamedTuple):
    """Settlement claims to write, as columns: order `payment_order_ids[i]` settled by line `lines[i]` of
    run `run_id`, replacing `prior[i]` (the claim read before, None if it had none)."""

    run_id: str
    payment_order_ids: Sequence[str]
    lines: Sequence[int]
    psp_references: Sequence[str]
    decided_at: Sequence[str]
    prior: Sequence[Claim | None]

    def pairs(self) -> Iterator[tuple[Claim, Claim | None]]:
        """Each new claim with the one it replaces."""
        for payment_order_id, line, psp_reference, decided_at, prior in zip(
            self.payment_order_ids, self.lines, self.psp_references, self.decided_at, self.prior, strict=True
        ):
            yield Claim(payment_order_id, "settled", self.run_id, line, psp_reference, decided_at), prior


class Outcome(NamedTuple):
    """What became of one row: a break of `klass`, or (klass None) matched."""

    line: int
    klass: str | None  # None: matched
    temporary: bool
    psp_reference: str
    merchant_reference: str
    created_at: datetime | None
    detail: str = ""
    closed: str = ""  # "temporary" | "permanent" when this row settled an earlier run's break
    # a matched row's booking: money in, its gross and fee; money out, the receivable it clears and the
    # fee we bear (a dispute's fee is the seller's: it clears receivable with the amount)
    amount: int = 0
    fee: int = 0
    currency: str = ""
    kind: str = ""  # the row's type ("" from outcomes stored before types were kept: a charge)


class ReviewItem(BaseModel):
    """A break a person has to look at (sent to the review queue)."""

    run_id: str
    break_class: str
    line: int | None
    psp_reference: str
    merchant_reference: str
    detail: str
    report_key: str | None = None
