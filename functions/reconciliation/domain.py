"""A reconciliation run's lifecycle: a settlement object in, a completed (or failed) run record out.

A run reads a settlement file once, in order, `CHUNK` rows at a time (settlement_file.py): each chunk is
classified against the executor's orders, claimed and posted (classify.py) and folded into the run's
tally (tally.py). Once every row is in, missing orders are found by paging the executor's index of
decided orders against the claims (missing.py), the reports are written, the permanent breaks sent for
review, and the run record completed - last, so a crash before it re-runs the whole idempotent sequence.

Files too large for one invocation go through the Distributed Map instead: its row workers classify rows
in batches (`reconcile_row_tasks`) and store each outcome; the finaliser folds them (`finalize_run`).

Before either path touches anything, the file's rows must sum to its summary rows (closing_balance.py):
a file that does not is a FAILED run with reason `balance_mismatch` (or `summary_missing`).

Two senders drop a file for each day: the PSP at settlements/<day>/<file>, the payout provider at
settlements/<day>/payout-provider/<file>. The key says which (`sender_of`): each file is matched and
checked for missing records of its own sender's row types only (row_kinds.SENDER_TYPES)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from functions.common.clock import Clock, iso, utc_now
from functions.common.ids import deterministic_id
from functions.reconciliation.classify import NO_RECORDS, classify_chunk, classify_columns
from functions.reconciliation.closing_balance import check_closing_balance
from functions.reconciliation.messages import RowTask
from functions.reconciliation.missing import find_missing
from functions.reconciliation.models import CHUNK, FailureReason, FileSender, ObjectRef, Run, RunChange, RunPolicy
from functions.reconciliation.ports import BreaksLog, ClaimStore, OrderSource, PostingSink, RecordSource, RunPorts
from functions.reconciliation.settlement_file import (
    SETTLEMENT_COLUMNS,
    NotASettlementFile,
    Parsed,
    parse_block,
    parse_fields,
    parse_lines,
    rows_of,
    settlement_blocks,
)
from functions.reconciliation.tally import Tally, complete_run

DISTRIBUTED_METADATA = "reconcile-mode"  # x-amz-meta-reconcile-mode: distributed forces the Map path
_DAY_KEY = re.compile(r"(?:^|/)(\d{4}-\d{2}-\d{2})/")  # settlements/<day>/<file>
PAYOUT_PROVIDER_FOLDER = "payout-provider/"  # settlements/<day>/payout-provider/<file>


def day_of(key: str) -> str | None:
    """The settlement day a file is for, from its key (settlements/<YYYY-MM-DD>/...); None if it has none."""
    found = _DAY_KEY.search(key)
    return None if found is None else found.group(1)


def sender_of(key: str) -> FileSender:
    """Who sent a file, from its key: the payout provider's files are in the day folder's
    `payout-provider/` folder; any other is the PSP's."""
    found = _DAY_KEY.search(key)
    if found is not None and key.startswith(PAYOUT_PROVIDER_FOLDER, found.end()):
        return "payout_provider"
    return "psp"


def missing_day_id(day: str) -> str:
    """The id of a day's MISSING record (one per day: the deadline check writes it again and again)."""
    return f"missing_{day}"


def run_id_for(source: ObjectRef) -> str:
    """One run per object content at a key: a redelivered notification, or the same file dropped twice
    (a new version with the same ETag), maps to the same run."""
    return deterministic_id("rr", source.bucket, source.key, source.etag or source.version or "")


def reconcile_lines(
    run: Run,
    lines: Iterable[str],
    *,
    orders: OrderSource,
    claims: ClaimStore,
    postings: PostingSink,
    breaks_log: BreaksLog,
    records: Mapping[str, RecordSource] = NO_RECORDS,
) -> Tally:
    """Every row of the file in one pass, in chunks of `CHUNK` rows (the stream path): a block of `CHUNK`
    plain valid lines is classified as columns, without a Row per line; rows of any other block wait in
    `pending` to be classified in chunks of `CHUNK`. `find_missing` completes the tally."""
    tally = Tally(run.run_id, breaks_log)
    sender = run.sender
    pending: list[Parsed] = []
    for number, block in settlement_blocks(lines):
        columns = parse_block(number, block)
        if columns is not None and not pending:
            # the block's rows are the next chunk: CHUNK of them, or the file's last ones
            tally.merge(
                classify_columns(
                    run.run_id, columns, sender=sender, orders=orders, claims=claims, postings=postings, records=records
                )
            )
            continue
        pending.extend(parse_lines(number, block) if columns is None else rows_of(columns))
        while len(pending) >= CHUNK:
            chunk, pending = pending[:CHUNK], pending[CHUNK:]
            tally.merge(
                classify_chunk(
                    run.run_id, chunk, sender=sender, orders=orders, claims=claims, postings=postings, records=records
                )
            )
    if pending:
        tally.merge(
            classify_chunk(
                run.run_id, pending, sender=sender, orders=orders, claims=claims, postings=postings, records=records
            )
        )
    return tally


def start_run(source: ObjectRef, *, ports: RunPorts, policy: RunPolicy, now: Clock = utc_now) -> RunChange:
    """One settlement object: reconciled here (the stream path) or handed to the Distributed Map if it is
    large. Idempotent per (bucket, key, ETag): a run already done, or handed over, is left as it is."""
    head = ports.files.head(source)
    if head is not None and not source.etag:
        source = source.model_copy(update={"etag": head.etag})
    run_id = run_id_for(source)
    existing = ports.runs.get(run_id)
    if existing is not None and (existing.status != "RUNNING" or existing.mode == "distributed"):
        return RunChange(existing, "unchanged")  # a redelivered notification, or the same file dropped again
    run = existing or Run(
        run_id=run_id, source=source, day=day_of(source.key), sender=sender_of(source.key), created_at=iso(now())
    )
    if head is None:
        return fail_run(
            run,
            "the settlement object does not exist (deleted before it was read)",
            "object_missing",
            ports=ports,
            now=now,
        )
    if run.day is not None and run.sender == "psp":
        # the day's file arrived: its run replaces MISSING (the deadline waits for the PSP's file only: a
        # day without payouts may have no payout provider file)
        ports.runs.delete(missing_day_id(run.day))
    distributed = (
        head.size > policy.distributed_threshold_bytes or head.metadata.get(DISTRIBUTED_METADATA) == "distributed"
    )
    if not distributed:
        ports.runs.put(run)
    try:
        with ports.files.lines(source) as lines:
            problem = check_closing_balance(lines)
    except NotASettlementFile as error:
        return fail_run(run, f"not a settlement file: {error}", "not_a_settlement_file", ports=ports, now=now)
    if problem is not None:
        return fail_run(run, problem.detail, problem.reason, ports=ports, now=now)
    if distributed:
        run = run.model_copy(update={"mode": "distributed"})
        ports.runs.put(run)
        ports.large_files.start(run_id, source)
        return RunChange(run, "distributed")
    with ports.files.lines(source) as lines:  # closed, and its connection released, however the run ends
        tally = reconcile_lines(
            run,
            lines,
            orders=ports.orders,
            claims=ports.claims,
            postings=ports.postings,
            breaks_log=ports.new_breaks_log(),
            records=ports.records,
        )
    return finish_run(run, tally, ports=ports, policy=policy, now=now)


def finish_run(run: Run, tally: Tally, *, ports: RunPorts, policy: RunPolicy, now: Clock = utc_now) -> RunChange:
    """Missing orders, reports under <report prefix><run>/, review items, then the completed run record
    (last, so a crash before it re-runs the whole idempotent sequence)."""
    find_missing(
        tally, sender=run.sender, orders=ports.orders, claims=ports.claims, grace=policy.grace, records=ports.records
    )
    prefix = f"{policy.report_prefix}{run.run_id}/"
    bucket = run.source.bucket
    report = ObjectRef(bucket=bucket, key=f"{prefix}summary.json")
    breaks_report = ObjectRef(bucket=bucket, key=f"{prefix}breaks.csv")
    completed = complete_run(run, tally, completed_at=iso(now())).model_copy(
        update={"report": report, "breaks_report": breaks_report}
    )
    ports.files.put_report(breaks_report, tally.breaks_log.contents(), "text/csv")
    ports.files.put_report(report, completed.model_dump_json(indent=2).encode(), "application/json")
    ports.review.send(tally.review_items(breaks_report.key))
    ports.runs.put(completed)
    return RunChange(completed, "completed")


def fail_run(run: Run, error: str, reason: FailureReason, *, ports: RunPorts, now: Clock = utc_now) -> RunChange:
    failed = run.model_copy(update={"status": "FAILED", "error": error, "reason": reason, "completed_at": iso(now())})
    ports.runs.put(failed)
    return RunChange(failed, "failed")


def finalize_run(run_id: str, *, ports: RunPorts, policy: RunPolicy, now: Clock = utc_now) -> RunChange | None:
    """Every row of a distributed run is in: fold the row workers' outcomes and finish the run (None if
    there is no such run)."""
    run = ports.runs.get(run_id)
    if run is None or run.status != "RUNNING":
        return None if run is None else RunChange(run, "unchanged")
    tally = Tally(run_id, ports.new_breaks_log())
    for outcome in ports.outcomes.outcomes(run_id):
        tally.add(outcome)
    return finish_run(run, tally, ports=ports, policy=policy, now=now)


def abandon_run(run_id: str, cause: str, *, ports: RunPorts, now: Clock = utc_now) -> RunChange | None:
    """The Distributed Map of a run failed: the run fails with the cause, unless it is over already."""
    run = ports.runs.get(run_id)
    if run is None or run.status != "RUNNING":
        return None if run is None else RunChange(run, "unchanged")
    return fail_run(run, f"the Distributed Map failed: {cause}", "map_failed", ports=ports, now=now)


def reconcile_row_tasks(tasks: Sequence[RowTask], *, ports: RunPorts) -> None:
    """Rows of one batch, per run: classified and claimed like a chunk of the stream path (but each matched
    row booked as its own journal: SQS makes up batches as it likes), their outcomes stored for the
    finaliser, then each row's task reported done to the state machine. The run record says whose file
    the rows are from (start_run wrote it before the Distributed Map started)."""
    by_run: dict[str, list[RowTask]] = defaultdict(list)
    for task in tasks:
        by_run[task.run_id].append(task)
    for run_id, run_tasks in by_run.items():
        run = ports.runs.get(run_id)
        if run is None:
            raise LookupError(f"no reconciliation run {run_id} for its rows")
        run_tasks.sort(key=lambda t: t.line)
        parsed = [parse_fields(t.line, [t.row.get(c, "") for c in SETTLEMENT_COLUMNS]) for t in run_tasks]
        chunk = classify_chunk(
            run_id,
            parsed,
            sender=run.sender,
            orders=ports.orders,
            claims=ports.claims,
            postings=ports.postings,
            per_row=True,
            records=ports.records,
        )
        ports.outcomes.save(run_id, chunk.outcomes)
        for task in run_tasks:
            ports.large_files.row_done(task.task_token, task.line)
