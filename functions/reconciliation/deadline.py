"""A day without a settlement file: the PSP sends each day's file the next morning; if none has arrived
for a day by the deadline hour (UTC) of the next day, the day gets a MISSING record (listed with the runs,
and alarmed). The check runs on a schedule, so it writes the same record each time until the file comes;
the file's run then replaces it (domain.start_run deletes it, and so does the next check that sees the
file, in case the two raced).

Only the PSP's file is expected: a day without payouts may have no payout provider file at all, so one
that did arrive does not stand in for the PSP's."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import NamedTuple, Protocol

from functions.common.clock import iso
from functions.reconciliation.domain import missing_day_id
from functions.reconciliation.models import FileSender, ObjectRef, Run
from functions.reconciliation.ports import RunStore


class DayFiles(Protocol):
    def has_file(self, day: date, sender: FileSender) -> bool:
        """Whether a settlement file of `sender` for `day` has arrived (settlements/<day>/..., whose
        sender domain.sender_of tells)."""


class DayCheck(NamedTuple):
    day: date
    missing: bool
    record: Run | None  # the MISSING record, when missing


def due_day(now: datetime, deadline_hour: int) -> date:
    """The latest day whose file is due by `now`: day D's file is due at D+1, deadline_hour:00 UTC."""
    return (now - timedelta(hours=deadline_hour)).date() - timedelta(days=1)


def check_day(
    now: datetime, *, deadline_hour: int, bucket: str, prefix: str, runs: RunStore, files: DayFiles
) -> DayCheck:
    day = due_day(now, deadline_hour)
    run_id = missing_day_id(day.isoformat())
    if files.has_file(day, "psp"):
        runs.delete(run_id)
        return DayCheck(day, False, None)
    record = runs.get(run_id) or Run(
        run_id=run_id,
        source=ObjectRef(bucket=bucket, key=f"{prefix}{day.isoformat()}/"),
        status="MISSING",
        day=day.isoformat(),
        error=f"no settlement file from the PSP for {day.isoformat()} by {deadline_hour:02d}:00 UTC the next day",
        reason="file_missing",
        created_at=iso(now),
    )
    runs.put(record)
    return DayCheck(day, True, record)
