"""A day file of every row type through the stream path and through the Distributed Map (row tasks in
batches of any make-up, then the finaliser) gives the same run, breaks and books - the PSP's file and the
payout provider's; a file that does not sum to its summary fails before anything is booked, on either
path; a day without the PSP's file is MISSING until that file arrives."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest

from functions.reconciliation import domain
from functions.reconciliation.deadline import check_day, due_day
from functions.reconciliation.domain import DISTRIBUTED_METADATA, missing_day_id
from functions.reconciliation.messages import RowTask
from functions.reconciliation.models import BREAK_CLASSES, FileSender, Order, Run, RunPolicy
from functions.reconciliation.ports import RecordSource, RunPorts
from functions.reconciliation.settlement_file import SETTLEMENT_COLUMNS
from tests.support.reconciliation_ports import Files, LargeFiles, Outcomes, Postings, Records, Runs, in_memory_ports
from tests.support.settlement_files import HEADER, summary_line, with_summary
from tests.unit.test_reconciliation_row_types import PROVIDER_KEY, a_day, a_days_payouts, record, row

NOW = datetime(2026, 5, 2, 6, 0, tzinfo=UTC)
POLICY = RunPolicy(grace=timedelta(minutes=15), report_prefix="reports/", distributed_threshold_bytes=10**7)
NONE = dict.fromkeys(BREAK_CLASSES, 0)
KEY = "settlements/2026-05-01/psp-settlement-2026-05-01.csv"


def now() -> datetime:
    return NOW


def a_day_with_a_difference_of_each_class() -> tuple[list[Order], dict[str, RecordSource], dict[FileSender, str]]:
    """`a_day`'s records and files (the PSP's, the payout provider's), with a difference of each break
    class in each file."""
    orders, records, text = a_day()
    refunds, payouts = records["refund"], records["payout"]
    assert isinstance(refunds, Records) and isinstance(payouts, Records)
    refunds.by_id.update(
        {
            r.reference: r
            for r in (
                record("re_amount", "SUCCEEDED", 700, 7),
                record("re_gone", "SUCCEEDED", 50, 8),
                record("re_failed", "FAILED", 900, 9),
            )
        }
    )
    payouts.by_id.update(
        {r.reference: r for r in (record("pay_failed", "FAILED", 900, 9), record("pay_gone", "PAID", 60, 8))}
    )
    text += (
        row("refund", "re_amount", 750, 7)  # amount
        + row("refund", "re_failed", 900, 9)  # status: we failed it, the PSP refunded it
        + row("refund", "re_1", 2_000, 2)  # duplicate of line 3
        + row("dispute", "dp_nobody", 300, 10, fee=1_500)  # missing internally
        + row("refund", "re_1", 2_000, 11, currency="EUR").replace("re_1", "re_eur").replace("psp_re_eur", "psp_x")
        + "psp_bad,re_bad,refund,12.50,USD,0,12.50,succeeded,2026-05-01T12:00:12Z,2026-05-03\n"  # malformed
    )  # and re_gone (succeeded at 8 s) is not in the file: missing externally
    payouts_text = a_days_payouts() + (
        row("payout", "pay_failed", 900, 9)  # status: we failed it, the provider paid it
        + row("payout", "pay_1", 3_000, 3)  # duplicate of line 2
        + row("payout", "pay_nobody", 300, 10)  # missing internally
        + row("charge", "po_1", 10_000, 11)  # the PSP's row type: malformed here
        + "pout_bad,pay_bad,payout,12.50,USD,0,12.50,paid,2026-05-01T12:00:12Z,2026-05-03\n"  # malformed
    )  # and pay_gone (paid at 8 s) is not in the file: missing externally
    return list(orders.by_id.values()), records, {"psp": text, "payout_provider": payouts_text}


def _ports(orders: list[Order], records: dict[str, RecordSource]) -> RunPorts:
    return in_memory_ports(orders, records=records)


def _stream(text: str, key: str = KEY) -> tuple[Run, RunPorts]:
    orders, records, _ = a_day_with_a_difference_of_each_class()
    ports = _ports(orders, records)
    assert isinstance(ports.files, Files)
    change = domain.start_run(ports.files.drop(key, text.encode()), ports=ports, policy=POLICY, now=now)
    return change.run, ports


def _distributed(text: str, seed: int, key: str = KEY) -> tuple[Run, RunPorts]:
    orders, records, _ = a_day_with_a_difference_of_each_class()
    ports = _ports(orders, records)
    assert isinstance(ports.files, Files)
    source = ports.files.drop(key, text.encode(), {DISTRIBUTED_METADATA: "distributed"})
    run = domain.start_run(source, ports=ports, policy=POLICY, now=now).run
    assert run.mode == "distributed"
    lines = text.splitlines()[1:]
    tasks = [
        RowTask(
            run_id=run.run_id,
            line=n,
            row=dict(zip(SETTLEMENT_COLUMNS, line.split(","), strict=False)),
            task_token=f"t{n}",
        )
        for n, line in enumerate(lines, start=2)
    ]
    rng = random.Random(seed)
    rng.shuffle(tasks)
    while tasks:  # batches SQS made up, of any size and order
        size = rng.randint(1, 4)
        batch, tasks = tasks[:size], tasks[size:]
        domain.reconcile_row_tasks(batch, ports=ports)
    change = domain.finalize_run(run.run_id, ports=ports, policy=POLICY, now=now)
    assert change is not None
    return change.run, ports


def _either_duplicate(line: str) -> str:
    """A duplicate_row line with the pair of lines it names in order (`line 4` at 10 == `line 10` at 4)."""
    if not line.startswith("duplicate_row,"):
        return line
    klass, temporary, number, psp, reference, detail = line.split(",")
    pair = sorted([int(number), int(detail.removeprefix("line "))])
    return f"{klass},{temporary},{pair},{psp},{reference}"


def _books(ports: RunPorts) -> dict[str, int]:
    assert isinstance(ports.postings, Postings)
    totals: dict[str, int] = defaultdict(int)
    for journal in ports.postings.booked().values():
        for line in journal.lines:
            totals[f"{journal.kind}:{line.account}"] += line.amount if line.direction == "debit" else -line.amount
    return dict(totals)


EXPECTED: dict[FileSender, tuple[str, dict[str, int], tuple[int, int], int]] = {
    # the file's key, its breaks, (rows, matched), and the receivable its matched money-out rows cleared
    "psp": (
        KEY,
        {
            **NONE,
            "missing_internal": 2,  # the dispute of nobody's, the EUR refund of no refund of ours
            "missing_external": 1,
            "amount_mismatch": 1,
            "status_mismatch": 1,
            "duplicate_row": 1,
            "malformed_row": 1,
        },
        (11, 5),
        2_000 + 2_500 + 2_000,
    ),
    "payout_provider": (
        PROVIDER_KEY,
        {
            **NONE,
            "missing_internal": 1,  # the payout of nobody's
            "missing_external": 1,
            "status_mismatch": 1,
            "duplicate_row": 1,
            "malformed_row": 2,  # the charge row, the amount that is no integer
        },
        (6, 1),
        3_000,
    ),
}


@pytest.mark.parametrize("sender", ["psp", "payout_provider"])
@pytest.mark.parametrize("seed", range(4))
def test_every_row_type_and_every_break_class_give_the_same_run_on_both_paths(seed: int, sender: FileSender) -> None:
    _, _, texts = a_day_with_a_difference_of_each_class()
    text = with_summary(texts[sender])
    key, breaks, (rows, matched), cleared = EXPECTED[sender]

    by_stream, stream_ports = _stream(text, key)
    by_map, map_ports = _distributed(text, seed, key)

    # Then the runs agree on everything but how they ran
    assert by_stream.status == by_map.status == "COMPLETED"
    assert by_stream.sender == by_map.sender == sender
    assert by_stream.breaks == breaks
    same = ("rows", "matched", "breaks", "temporary_breaks", "settled_amounts", "fees", "paid_out", "paid_out_fees")
    assert {f: getattr(by_map, f) for f in same} == {f: getattr(by_stream, f) for f in same}
    assert (by_stream.rows, by_stream.matched) == (rows, matched)
    assert by_stream.cutoff == by_map.cutoff
    # And the same breaks report, line for line (sorted: the map's rows finish in any order, so which of
    # two equal rows is the duplicate of the other is the one that came second)
    reports = []
    for ports, run in ((stream_ports, by_stream), (map_ports, by_map)):
        assert isinstance(ports.files, Files)
        report = ports.files.reports[f"reports/{run.run_id}/breaks.csv"][0].decode().splitlines()
        reports.append(sorted(map(_either_duplicate, report)))
    assert reports[0] == reports[1]
    # And the same money booked to each account (per chunk on one path, per row on the other)
    assert _books(stream_ports) == _books(map_ports)
    assert _books(stream_ports)["settlement_cash_out:psp_receivable"] == cleared


@pytest.mark.parametrize("distributed", [False, True])
def test_a_file_that_does_not_sum_to_its_summary_fails_and_books_nothing(distributed: bool) -> None:
    # Given the day's file, one row short of what its summary says (a row lost in transfer)
    _, _, text = a_day()
    complete = with_summary(text)
    short = "".join(line for line in complete.splitlines(keepends=True) if ",refund," not in line)
    orders, records, _ = a_day()
    ports = _ports(list(orders.by_id.values()), records)
    assert isinstance(ports.files, Files) and isinstance(ports.large_files, LargeFiles)
    metadata = {DISTRIBUTED_METADATA: "distributed"} if distributed else {}

    # When it arrives
    change = domain.start_run(ports.files.drop(KEY, short.encode(), metadata), ports=ports, policy=POLICY, now=now)

    # Then the run FAILED with the reason and what does not add up, and nothing was claimed or booked
    assert (change.change, change.run.status, change.run.reason) == ("failed", "FAILED", "balance_mismatch")
    assert change.run.error == (
        "USD: rows sum to net 6180 (amount 9500, fee 3320); the summary (line 6) says net 4180 (amount 7500, fee 3320)"
    )
    assert isinstance(ports.postings, Postings) and isinstance(ports.outcomes, Outcomes)
    assert (ports.postings.journals, ports.large_files.started, ports.files.reports) == ([], [], {})
    assert ports.claims.claims(["po_1", "dispute#dp_won"]) == {}


def test_a_file_without_a_summary_fails_as_summary_missing() -> None:
    _, _, text = a_day()
    orders, records, _ = a_day()
    ports = _ports(list(orders.by_id.values()), records)
    assert isinstance(ports.files, Files)
    change = domain.start_run(ports.files.drop(KEY, text.encode()), ports=ports, policy=POLICY, now=now)
    assert (change.run.status, change.run.reason) == ("FAILED", "summary_missing")
    assert change.run.error == "the file has no summary row: it may be truncated"


def test_an_empty_day_with_its_zero_summary_completes() -> None:
    ports = in_memory_ports()
    assert isinstance(ports.files, Files)
    text = HEADER + summary_line("USD", 0, 0)
    change = domain.start_run(ports.files.drop(KEY, text.encode()), ports=ports, policy=POLICY, now=now)
    assert (change.run.status, change.run.rows, change.run.breaks) == ("COMPLETED", 0, NONE)


# --- a day without a file --------------------------------------------------------------------------------


class DayFiles:
    def __init__(self, days: set[tuple[date, FileSender]]) -> None:
        self.days = days  # (day, sender) of each file that arrived

    def has_file(self, day: date, sender: FileSender) -> bool:
        return (day, sender) in self.days


@pytest.mark.parametrize(
    ("moment", "due"),
    [
        ("2026-05-02T06:00:00+00:00", "2026-05-01"),
        ("2026-05-02T05:59:59+00:00", "2026-04-30"),
        ("2026-05-02T23:00:00+00:00", "2026-05-01"),
        ("2026-05-03T00:30:00+00:00", "2026-05-01"),
    ],
)
def test_the_due_day_is_the_latest_whose_deadline_passed(moment: str, due: str) -> None:
    assert due_day(datetime.fromisoformat(moment), 6).isoformat() == due


def test_a_day_without_a_file_is_missing_until_its_file_arrives_and_its_run_replaces_it() -> None:
    # Given no file for 2026-05-01 by 06:00 the next day
    ports = in_memory_ports()
    runs, files = ports.runs, ports.files
    assert isinstance(runs, Runs) and isinstance(files, Files)
    arrived: set[tuple[date, FileSender]] = set()

    # When the check runs (twice: hourly)
    first = check_day(NOW, deadline_hour=6, bucket="b", prefix="settlements/", runs=runs, files=DayFiles(arrived))
    again = check_day(
        NOW + timedelta(hours=1), deadline_hour=6, bucket="b", prefix="settlements/", runs=runs, files=DayFiles(arrived)
    )

    # Then the day is MISSING: one record, listed with the runs
    assert (first.day.isoformat(), first.missing, again.missing) == ("2026-05-01", True, True)
    missing = runs.get(missing_day_id("2026-05-01"))
    assert missing is not None and missing == first.record == again.record
    assert (missing.status, missing.day, missing.reason, missing.source.key) == (
        "MISSING",
        "2026-05-01",
        "file_missing",
        "settlements/2026-05-01/",
    )
    assert missing.error == "no settlement file from the PSP for 2026-05-01 by 06:00 UTC the next day"
    assert runs.list_runs(10) == [missing]

    # When the late file arrives
    _, _, text = a_day()
    orders, records, _ = a_day()
    late_ports = RunPorts(**{**ports.__dict__, "orders": orders, "records": records})
    change = domain.start_run(files.drop(KEY, with_summary(text).encode()), ports=late_ports, policy=POLICY, now=now)

    # Then its run replaces the MISSING record, and the next check finds the day's file
    assert (change.run.status, change.run.day) == ("COMPLETED", "2026-05-01")
    assert runs.list_runs(10) == [change.run]
    arrived.add((date(2026, 5, 1), "psp"))
    later = check_day(
        NOW + timedelta(hours=2), deadline_hour=6, bucket="b", prefix="settlements/", runs=runs, files=DayFiles(arrived)
    )
    assert (later.missing, later.record, runs.list_runs(10)) == (False, None, [change.run])
