"""Two senders of settlement files: the PSP's file (settlements/<day>/<file>) carries charges, refunds and
disputes; the payout provider's (settlements/<day>/payout-provider/<file>) carries payouts. Each file is
matched, and checked for missing records, for its own sender's row types only, on both paths; a row of
the other sender's type is a malformed_row; the deadline waits for the PSP's file alone."""

from __future__ import annotations

import csv
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from functions.reconciliation import domain
from functions.reconciliation.deadline import check_day
from functions.reconciliation.domain import DISTRIBUTED_METADATA, day_of, missing_day_id, run_id_for, sender_of
from functions.reconciliation.messages import RowTask
from functions.reconciliation.models import BREAK_CLASSES, Claim, FileSender, ObjectRef, Order, Run, RunPolicy
from functions.reconciliation.ports import RecordSource, RunPorts
from functions.reconciliation.settlement_file import SETTLEMENT_COLUMNS
from tests.support.reconciliation_ports import Files, Postings, Records, Runs, in_memory_ports
from tests.support.settlement_files import HEADER, with_summary
from tests.unit.test_reconciliation_row_types import PROVIDER_KEY, PSP_KEY, at, record, row

NOW = datetime(2026, 5, 2, 6, 0, tzinfo=UTC)
POLICY = RunPolicy(grace=timedelta(minutes=15), report_prefix="reports/", distributed_threshold_bytes=10**7)
NONE = dict.fromkeys(BREAK_CLASSES, 0)
PATHS = ["stream", "distributed"]


def now() -> datetime:
    return NOW


def order(ref: str, seconds: float, amount: int = 1_000) -> Order:
    return Order(ref, "SUCCEEDED", amount, "USD", f"psp_{ref}", at(seconds), "seller")


def payouts(*paid: tuple[str, float]) -> Records:
    """Paid payouts of 3000 USD, each paid at its second."""
    return Records([record(ref, "PAID", 3_000, seconds) for ref, seconds in paid], settled=["PAID"])


def reconcile(
    ports: RunPorts, key: str, text: str, path: str = "stream", seed: int = 0
) -> tuple[Run, list[tuple[str, ...]]]:
    """The file (its summary added) through the stream path or the Distributed Map (its rows in batches of
    any make-up and order, then the finaliser): the completed run, and its breaks report's lines as
    (class, temporary, line, psp_reference, merchant_reference, detail)."""
    assert isinstance(ports.files, Files)
    text = with_summary(text)
    metadata = {DISTRIBUTED_METADATA: "distributed"} if path == "distributed" else {}
    change = domain.start_run(ports.files.drop(key, text.encode(), metadata), ports=ports, policy=POLICY, now=now)
    if path == "distributed":
        run = change.run
        assert (change.change, run.mode) == ("distributed", "distributed")
        tasks = [
            RowTask(
                run_id=run.run_id,
                line=n,
                row=dict(zip(SETTLEMENT_COLUMNS, line.split(","), strict=False)),
                task_token=f"t{n}",
            )
            for n, line in enumerate(text.splitlines()[1:], start=2)
        ]
        rng = random.Random(seed)
        rng.shuffle(tasks)
        while tasks:
            size = rng.randint(1, 3)
            batch, tasks = tasks[:size], tasks[size:]
            domain.reconcile_row_tasks(batch, ports=ports)
        finished = domain.finalize_run(run.run_id, ports=ports, policy=POLICY, now=now)
        assert finished is not None
        change = finished
    assert change.run.status == "COMPLETED"
    report = ports.files.reports[f"reports/{change.run.run_id}/breaks.csv"][0].decode()
    return change.run, [tuple(line) for line in csv.reader(report.splitlines()[1:])]


def journals(ports: RunPorts) -> list[tuple[str, str]]:
    assert isinstance(ports.postings, Postings)
    return [(j.kind, j.business_id) for j in ports.postings.journals]


# --- the sender, from the key ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "day", "sender"),
    [
        (PSP_KEY, "2026-05-01", "psp"),
        (PROVIDER_KEY, "2026-05-01", "payout_provider"),
        ("settlements/2026-05-01/payout-provider-2026-05-01.csv", "2026-05-01", "psp"),  # a file, not the folder
        ("settlements/2026-05-01/other/payout-provider/x.csv", "2026-05-01", "psp"),  # not right after the day
        ("settlements/payout-provider/x.csv", None, "psp"),  # no day folder
        ("settlements/x.csv", None, "psp"),
    ],
)
def test_a_files_sender_comes_from_the_folder_after_its_day(key: str, day: str | None, sender: FileSender) -> None:
    assert (day_of(key), sender_of(key)) == (day, sender)


def test_the_two_files_of_a_day_are_two_runs() -> None:
    # Given the same content dropped as the PSP's file and as the payout provider's (the same ETag)
    psp = ObjectRef(bucket="b", key=PSP_KEY, etag="e1")
    provider = ObjectRef(bucket="b", key=PROVIDER_KEY, etag="e1")
    assert run_id_for(psp) != run_id_for(provider)

    # When both files of the day arrive
    ports = in_memory_ports([order("po_1", 1)], records={"payout": payouts(("pay_1", 2))})
    psp_run, psp_breaks = reconcile(ports, PSP_KEY, HEADER + row("charge", "po_1", 1_000, 1))
    provider_run, provider_breaks = reconcile(ports, PROVIDER_KEY, HEADER + row("payout", "pay_1", 3_000, 2))

    # Then each has its own run, for its sender and the same day, both listed
    assert psp_run.run_id != provider_run.run_id
    assert (psp_run.sender, psp_run.day, psp_run.matched, psp_run.breaks) == ("psp", "2026-05-01", 1, NONE)
    assert (provider_run.sender, provider_run.day, provider_run.matched) == ("payout_provider", "2026-05-01", 1)
    assert (provider_run.breaks, psp_breaks, provider_breaks) == (NONE, [], [])
    assert isinstance(ports.runs, Runs)
    assert {r.run_id for r in ports.runs.list_runs(10)} == {psp_run.run_id, provider_run.run_id}


# --- matching: each file its own row types ---------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_a_payout_row_in_the_providers_file_matches_and_is_booked(path: str) -> None:
    ports = in_memory_ports(records={"payout": payouts(("pay_1", 1))})

    run, breaks = reconcile(ports, PROVIDER_KEY, HEADER + row("payout", "pay_1", 3_000, 1), path)

    assert (run.rows, run.matched, run.breaks, run.temporary_breaks, breaks) == (1, 1, NONE, NONE, [])
    assert (run.settled_amounts, run.paid_out, run.paid_out_fees) == ({}, {"USD": 3_000}, {"USD": 0})
    assert ports.claims.claims(["payout#pay_1"])["payout#pay_1"][:4] == ("payout#pay_1", "settled", run.run_id, 2)
    assert journals(ports) == [("settlement_cash_out", f"{run.run_id}:2:USD")]


@pytest.mark.parametrize("path", PATHS)
def test_a_charge_row_in_the_providers_file_is_malformed_and_books_nothing(path: str) -> None:
    # Given a succeeded order of ours, and the payout provider's file carrying its charge row with a payout
    ports = in_memory_ports([order("po_1", 1)], records={"payout": payouts(("pay_1", 2))})
    text = HEADER + row("charge", "po_1", 1_000, 1) + row("payout", "pay_1", 3_000, 2)

    # When it is reconciled
    run, breaks = reconcile(ports, PROVIDER_KEY, text, path)

    # Then the charge row is a malformed_row, not matched: nothing claimed or booked for the order
    assert (run.rows, run.matched, run.breaks, run.temporary_breaks) == (2, 1, {**NONE, "malformed_row": 1}, NONE)
    assert breaks == [
        (
            "malformed_row",
            "false",
            "2",
            "psp_po_1",
            "po_1",
            "charge row in the payout provider's settlement file: charge rows belong in the PSP's file",
        )
    ]
    assert ports.claims.claims(["po_1"]) == {}
    assert (run.settled_amounts, run.fees, run.paid_out) == ({}, {}, {"USD": 3_000})
    # (the stream path books per chunk, named by its first line; the Distributed Map per row)
    assert journals(ports) == [("settlement_cash_out", f"{run.run_id}:{2 if path == 'stream' else 3}:USD")]
    # And it does not widen the file's span: the cut-off is the payout row's
    assert run.cutoff == "2026-05-01T12:00:02.000000+00:00"


@pytest.mark.parametrize("path", PATHS)
def test_a_payout_row_in_the_psps_file_is_malformed_and_books_nothing(path: str) -> None:
    ports = in_memory_ports([order("po_1", 1)], records={"payout": payouts(("pay_1", 2))})
    text = HEADER + row("charge", "po_1", 1_000, 1) + row("payout", "pay_1", 3_000, 2)

    run, breaks = reconcile(ports, PSP_KEY, text, path)

    assert (run.rows, run.matched, run.breaks, run.temporary_breaks) == (2, 1, {**NONE, "malformed_row": 1}, NONE)
    assert breaks == [
        (
            "malformed_row",
            "false",
            "3",
            "psp_pay_1",
            "pay_1",
            "payout row in the PSP's settlement file: payout rows belong in the payout provider's file",
        )
    ]
    assert ports.claims.claims(["payout#pay_1"]) == {}
    assert (run.settled_amounts, run.paid_out) == ({"USD": 1_000}, {})
    assert journals(ports) == [("settlement", f"{run.run_id}:2:USD")]


def test_a_block_of_charges_with_one_payout_row_leaves_the_column_path_with_the_same_outcome() -> None:
    # Given the PSP's file: a full chunk (a block the column path takes) of matching charges, one a payout row
    orders = [order(f"po_{n}", n) for n in range(100)]
    ports = in_memory_ports(orders, records={"payout": payouts(("pay_1", 50))})
    lines = [row("charge", f"po_{n}", 1_000, n) for n in range(100)]
    lines[50] = row("payout", "pay_1", 3_000, 50)

    # When it is reconciled
    run, breaks = reconcile(ports, PSP_KEY, HEADER + "".join(lines))

    # Then the 99 charges match and the payout row alone is malformed; po_50 (not in the file) is missing
    assert (run.rows, run.matched) == (100, 99)
    assert run.breaks == {**NONE, "malformed_row": 1, "missing_external": 1}
    assert [(b[0], b[2], b[4]) for b in breaks] == [("malformed_row", "52", "pay_1"), ("missing_external", "", "po_50")]
    assert run.settled_amounts == {"USD": 99_000}


# --- missing records: each file its own sender's ---------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_the_psps_file_is_not_blamed_for_a_paid_payout(path: str) -> None:
    # Given a day with two succeeded orders and a payout paid between them, and the PSP's file of the orders
    ports = in_memory_ports([order("po_1", 1), order("po_2", 5)], records={"payout": payouts(("pay_1", 3))})
    text = HEADER + row("charge", "po_1", 1_000, 1) + row("charge", "po_2", 1_000, 5)

    # When it is reconciled
    run, breaks = reconcile(ports, PSP_KEY, text, path)

    # Then both rows match and the payout is no break: the payout provider's file carries it
    assert (run.rows, run.matched, run.breaks, run.temporary_breaks, breaks) == (2, 2, NONE, NONE, [])
    assert ports.claims.claims(["payout#pay_1"]) == {}


@pytest.mark.parametrize("path", PATHS)
def test_the_providers_file_is_not_blamed_for_orders_refunds_or_disputes(path: str) -> None:
    # Given a day with a succeeded order, a succeeded refund and an opened dispute between two paid payouts
    records: dict[str, RecordSource] = {
        "payout": payouts(("pay_1", 1), ("pay_2", 5)),
        "refund": Records([record("re_1", "SUCCEEDED", 500, 3)]),
        "dispute": Records([record("dp_1", "OPEN", 700, 3, fee=1_500)], settled=["OPEN", "WON", "LOST"]),
    }
    ports = in_memory_ports([order("po_1", 2)], records=records)
    text = HEADER + row("payout", "pay_1", 3_000, 1) + row("payout", "pay_2", 3_000, 5)

    # When the payout provider's file is reconciled
    run, breaks = reconcile(ports, PROVIDER_KEY, text, path)

    # Then its rows match and nothing of the PSP's is a break
    assert (run.rows, run.matched, run.breaks, run.temporary_breaks, breaks) == (2, 2, NONE, NONE, [])
    assert ports.claims.claims(["po_1", "refund#re_1", "dispute#dp_1"]) == {}


@pytest.mark.parametrize("path", PATHS)
def test_a_paid_payout_the_providers_file_lacks_is_missing_external(path: str) -> None:
    # Given three paid payouts and the payout provider's file of the first and the last
    ports = in_memory_ports(records={"payout": payouts(("pay_1", 1), ("pay_2", 3), ("pay_3", 5))})
    text = HEADER + row("payout", "pay_1", 3_000, 1) + row("payout", "pay_3", 3_000, 5)

    # When it is reconciled
    run, breaks = reconcile(ports, PROVIDER_KEY, text, path)

    # Then the one in between is a permanent missing_external break, with an open claim
    assert (run.rows, run.matched, run.temporary_breaks) == (2, 2, NONE)
    assert run.breaks == {**NONE, "missing_external": 1}
    assert breaks == [
        (
            "missing_external",
            "false",
            "",
            "psp_pay_2",
            "pay_2",
            "payout row of payout 3000 USD decided 2026-05-01T12:00:03+00:00, not in the file",
        )
    ]
    assert ports.claims.claims(["payout#pay_2"])["payout#pay_2"][:3] == ("payout#pay_2", "missing", run.run_id)


def test_each_file_escalates_only_its_own_senders_temporary_breaks() -> None:
    # Given two temporary breaks of earlier runs: an order and a payout decided at 2 s, expected next
    claims = [
        Claim("po_9", "awaiting", "rr_earlier", decided_at=at(2)),
        Claim("payout#pay_9", "awaiting", "rr_earlier", decided_at=at(2)),
    ]
    ports = in_memory_ports(
        [order("po_1", 1), order("po_5", 5)], claims, records={"payout": payouts(("pay_1", 1), ("pay_5", 5))}
    )

    # When the payout provider's file, past 2 s without the payout, is reconciled
    provider_run, provider_breaks = reconcile(
        ports, PROVIDER_KEY, HEADER + row("payout", "pay_1", 3_000, 1) + row("payout", "pay_5", 3_000, 5)
    )

    # Then it escalates the payout's break, and leaves the order's to the PSP's file
    assert (provider_run.escalated, provider_run.breaks) == (1, {**NONE, "missing_external": 1})
    assert [(b[0], b[4]) for b in provider_breaks] == [("missing_external", "pay_9")]
    stored = ports.claims.claims(["po_9", "payout#pay_9"])
    assert (stored["po_9"].state, stored["payout#pay_9"].state) == ("awaiting", "missing")

    # When the PSP's file, past 2 s without the order, is reconciled
    psp_run, psp_breaks = reconcile(
        ports, PSP_KEY, HEADER + row("charge", "po_1", 1_000, 1) + row("charge", "po_5", 1_000, 5)
    )

    # Then it escalates the order's break alone
    assert (psp_run.escalated, psp_run.breaks) == (1, {**NONE, "missing_external": 1})
    assert [(b[0], b[4]) for b in psp_breaks] == [("missing_external", "po_9")]
    assert ports.claims.claims(["po_9"])["po_9"].state == "missing"


# --- the deadline: the PSP's file -------------------------------------------------------------------------


class DayFiles:
    def __init__(self, arrived: set[tuple[date, FileSender]]) -> None:
        self.arrived = arrived

    def has_file(self, day: date, sender: FileSender) -> bool:
        return (day, sender) in self.arrived


def test_a_day_with_only_the_providers_file_stays_missing_until_the_psps_arrives() -> None:
    # Given the day is MISSING, and the payout provider's file of it arrives
    ports = in_memory_ports(records={"payout": payouts(("pay_1", 1))})
    runs = ports.runs
    assert isinstance(runs, Runs)
    arrived: set[tuple[date, FileSender]] = set()
    day = date(2026, 5, 1)

    def check(hours: int) -> bool:
        return check_day(
            NOW + timedelta(hours=hours),
            deadline_hour=6,
            bucket="b",
            prefix="settlements/",
            runs=runs,
            files=DayFiles(arrived),
        ).missing

    assert check(0) is True
    missing = runs.get(missing_day_id("2026-05-01"))
    provider_run, _ = reconcile(ports, PROVIDER_KEY, HEADER + row("payout", "pay_1", 3_000, 1))
    arrived.add((day, "payout_provider"))

    # Then the day is still MISSING: its run does not replace the record, nor does the next check
    assert missing is not None and runs.get(missing.run_id) == missing
    assert missing.run_id not in runs.deleted
    assert check(1) is True
    assert {r.run_id for r in runs.list_runs(10)} == {missing_day_id("2026-05-01"), provider_run.run_id}

    # When the PSP's file arrives, its run replaces the record and the next check finds the day complete
    psp_run, _ = reconcile(ports, PSP_KEY, HEADER)
    arrived.add((day, "psp"))
    assert {r.run_id for r in runs.list_runs(10)} == {provider_run.run_id, psp_run.run_id}
    assert check(2) is False
    assert runs.get(missing_day_id("2026-05-01")) is None
