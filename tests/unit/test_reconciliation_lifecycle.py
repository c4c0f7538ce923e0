"""A run's lifecycle in the domain, on in-memory ports: started from a settlement object, completed with its
reports and review items, failed, handed to the Distributed Map, finalised from row outcomes, abandoned."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.common.clock import iso
from functions.reconciliation import domain
from functions.reconciliation.domain import DISTRIBUTED_METADATA, run_id_for
from functions.reconciliation.messages import RowTask
from functions.reconciliation.models import BREAK_CLASSES, ObjectRef, Order, Run, RunChange, RunPolicy
from functions.reconciliation.ports import RunPorts
from functions.reconciliation.settlement_file import SETTLEMENT_COLUMNS
from tests.support.reconciliation_ports import Files, LargeFiles, Outcomes, Postings, Review, Runs, in_memory_ports
from tests.support.settlement_files import HEADER, with_summary

NOW = datetime(2026, 5, 2, 6, 0, tzinfo=UTC)
POLICY = RunPolicy(grace=timedelta(minutes=15), report_prefix="reports/", distributed_threshold_bytes=10_000)
NONE = dict.fromkeys(BREAK_CLASSES, 0)


def now() -> datetime:
    return NOW


def line(n: int, amount: int = 1000) -> str:
    return f"ch_{n},po_{n},charge,{amount},USD,59,{amount - 59},succeeded,2026-05-01T12:00:{n:02d}Z,2026-05-03\n"


def order(n: int, amount: int = 1000) -> Order:
    return Order(f"po_{n}", "SUCCEEDED", amount, "USD", f"ch_{n}", f"2026-05-01T12:00:{n:02d}+00:00", "seller")


def parts(ports: RunPorts) -> tuple[Runs, Files, Review, Postings, LargeFiles, Outcomes]:
    assert isinstance(ports.runs, Runs) and isinstance(ports.files, Files) and isinstance(ports.review, Review)
    assert isinstance(ports.postings, Postings) and isinstance(ports.large_files, LargeFiles)
    assert isinstance(ports.outcomes, Outcomes)
    return ports.runs, ports.files, ports.review, ports.postings, ports.large_files, ports.outcomes


def start(ports: RunPorts, source: ObjectRef) -> RunChange:
    return domain.start_run(source, ports=ports, policy=POLICY, now=now)


def test_a_settlement_file_is_reconciled_to_a_completed_run_with_its_reports_and_review_items() -> None:
    # Given three orders, and a file that matches one, differs in amount for another and misses the third
    ports = in_memory_ports([order(1), order(2), order(3)])
    runs, files, review, postings, _, _ = parts(ports)
    content = with_summary(HEADER + line(1) + line(3, amount=1100)).encode()
    source = files.drop("settlements/day.csv", content)

    # When the run starts
    change = start(ports, source)

    # Then it completes here, its source carrying the object's ETag
    run = change.run
    assert change.change == "completed"
    assert run.run_id == run_id_for(source.model_copy(update={"etag": f"etag-{len(content)}"}))
    assert (run.status, run.mode, run.rows, run.matched) == ("COMPLETED", "stream", 2, 1)
    assert run.breaks == {**NONE, "amount_mismatch": 1, "missing_external": 1}
    cutoff = "2026-05-01T12:00:03.000000+00:00"
    assert (run.settled_amounts, run.fees, run.cutoff) == ({"USD": 1000}, {"USD": 59}, cutoff)
    assert (run.created_at, run.completed_at) == (iso(NOW), iso(NOW))
    # And the run record went RUNNING, then COMPLETED (last)
    assert [(r.status, r.rows) for r in runs.puts] == [("RUNNING", 0), ("COMPLETED", 2)]
    # And the reports are under reports/<run>/: the summary is the completed run, the CSV has one line a break
    prefix = f"reports/{run.run_id}/"
    assert run.report == ObjectRef(bucket="settlement-bucket", key=f"{prefix}summary.json")
    assert run.breaks_report == ObjectRef(bucket="settlement-bucket", key=f"{prefix}breaks.csv")
    summary, summary_type = files.reports[f"{prefix}summary.json"]
    assert (Run.model_validate_json(summary), summary_type) == (run, "application/json")
    assert files.reports[f"{prefix}breaks.csv"] == (
        b"class,temporary,line,psp_reference,merchant_reference,detail\n"
        b'amount_mismatch,false,3,ch_3,po_3,"file 1100, order 1000 USD"\n'
        b'missing_external,false,,ch_2,po_2,"1000 USD decided 2026-05-01T12:00:02+00:00, not in the file"\n',
        "text/csv",
    )
    # And the two breaks are for review, pointing at the CSV; the matched row is booked
    assert [(i.break_class, i.line, i.report_key) for i in review.items] == [
        ("amount_mismatch", 3, f"{prefix}breaks.csv"),
        ("missing_external", None, f"{prefix}breaks.csv"),
    ]
    assert [j.business_id for j in postings.journals] == [f"{run.run_id}:2:USD"]


def test_the_same_object_again_leaves_its_run_as_it_is() -> None:
    ports = in_memory_ports([order(1)])
    runs, files, review, postings, _, _ = parts(ports)
    source = files.drop("settlements/day.csv", with_summary(HEADER + line(1)).encode())
    first = start(ports, source)

    again = start(ports, source)

    assert again == RunChange(first.run, "unchanged")
    assert (len(runs.puts), len(postings.journals), len(review.items)) == (2, 1, 0)


def test_an_object_deleted_before_it_was_read_is_a_failed_run() -> None:
    ports = in_memory_ports()
    runs, _, _, _, _, _ = parts(ports)
    source = ObjectRef(bucket="settlement-bucket", key="settlements/gone.csv", etag="e1")

    change = start(ports, source)

    assert change.change == "failed"
    assert (change.run.run_id, change.run.status, change.run.completed_at) == (
        run_id_for(source),
        "FAILED",
        iso(NOW),
    )
    assert change.run.error == "the settlement object does not exist (deleted before it was read)"
    assert runs.puts == [change.run]


def test_a_file_that_is_not_a_settlement_file_is_a_failed_run_and_nothing_is_booked() -> None:
    ports = in_memory_ports([order(1)])
    runs, files, review, postings, _, _ = parts(ports)
    source = files.drop("settlements/other.csv", b"id,amount\n1,2\n")

    change = start(ports, source)

    assert (change.change, change.run.status) == ("failed", "FAILED")
    assert change.run.error is not None
    assert change.run.error.startswith("not a settlement file: the header is not the settlement file header")
    assert [r.status for r in runs.puts] == ["RUNNING", "FAILED"]
    assert (postings.journals, review.items, files.reports) == ([], [], {})


def test_a_large_or_marked_file_is_handed_to_the_distributed_map_once() -> None:
    ports = in_memory_ports()
    runs, files, _, _, large_files, _ = parts(ports)
    large = files.drop("settlements/large.csv", with_summary(HEADER + line(1) * 200).encode())
    marked = files.drop(
        "settlements/marked.csv", with_summary(HEADER + line(1)).encode(), {DISTRIBUTED_METADATA: "distributed"}
    )

    changes = [start(ports, large), start(ports, marked), start(ports, large)]

    assert [(c.change, c.run.status, c.run.mode) for c in changes] == [
        ("distributed", "RUNNING", "distributed"),
        ("distributed", "RUNNING", "distributed"),
        ("unchanged", "RUNNING", "distributed"),
    ]
    assert [(run_id, source.key) for run_id, source in large_files.started] == [
        (changes[0].run.run_id, large.key),
        (changes[1].run.run_id, marked.key),
    ]
    assert large_files.started[0][1].etag == f"etag-{len(files.objects[large.key][0])}"
    assert [r.mode for r in runs.puts] == ["distributed", "distributed"]


def test_a_large_file_without_the_settlement_header_fails_before_the_map_starts() -> None:
    ports = in_memory_ports()
    _, files, _, _, large_files, _ = parts(ports)
    source = files.drop("settlements/large.bin", b"\x89PNG" + b"x" * 20_000)

    change = start(ports, source)

    assert (change.change, change.run.mode) == ("failed", "stream")
    assert (change.run.error or "").startswith("not a settlement file: the header is not the settlement file header")
    assert large_files.started == []


def _row(n: int, amount: int = 1000) -> dict[str, str]:
    return dict(zip(SETTLEMENT_COLUMNS, line(n, amount).rstrip("\n").split(","), strict=True))


def test_row_tasks_store_outcomes_and_the_finaliser_completes_the_run_from_them() -> None:
    # Given a distributed run of three rows, one with another amount
    ports = in_memory_ports([order(1), order(2), order(3)])
    runs, files, review, postings, large_files, outcomes = parts(ports)
    source = files.drop("settlements/large.csv", with_summary(HEADER + line(1) * 200).encode())
    run = start(ports, source).run

    # When the row workers get the rows in two batches SQS made up, out of order
    tasks = [
        RowTask(run_id=run.run_id, line=n + 1, row=_row(n, 1100 if n == 2 else 1000), task_token=f"t{n}")
        for n in (1, 2, 3)
    ]
    domain.reconcile_row_tasks([tasks[2], tasks[0]], ports=ports)
    domain.reconcile_row_tasks([tasks[1]], ports=ports)

    # Then each row's outcome is stored, each matched row is a journal, each task is reported done
    assert sorted(outcomes.by_run[run.run_id]) == [2, 3, 4]
    assert [j.business_id for j in postings.journals] == [f"{run.run_id}:2:USD", f"{run.run_id}:4:USD"]
    assert large_files.done == [("t1", 2), ("t3", 4), ("t2", 3)]

    # When the map finishes
    change = domain.finalize_run(run.run_id, ports=ports, policy=POLICY, now=now)

    # Then the run completes from the outcomes, with its reports and review item
    assert change is not None and change.change == "completed"
    done = change.run
    assert (done.status, done.mode, done.rows, done.matched) == ("COMPLETED", "distributed", 3, 2)
    assert done.breaks == {**NONE, "amount_mismatch": 1}
    assert (done.settled_amounts, done.fees) == ({"USD": 2000}, {"USD": 118})
    assert f"reports/{run.run_id}/breaks.csv" in files.reports
    assert [(i.break_class, i.line) for i in review.items] == [("amount_mismatch", 3)]
    assert runs.get(run.run_id) == done

    # And a repeated finalize message changes nothing; one for an unknown run is nothing to do
    assert domain.finalize_run(run.run_id, ports=ports, policy=POLICY, now=now) == RunChange(done, "unchanged")
    assert domain.finalize_run("rr_unknown", ports=ports, policy=POLICY, now=now) is None


def test_a_failed_map_fails_its_running_run_once() -> None:
    ports = in_memory_ports()
    runs, files, _, _, _, _ = parts(ports)
    run = start(ports, files.drop("settlements/large.csv", with_summary(HEADER + line(1) * 200).encode())).run

    change = domain.abandon_run(run.run_id, '{"Error": "States.Timeout"}', ports=ports, now=now)

    assert change is not None and change.change == "failed"
    assert (change.run.status, change.run.error) == (
        "FAILED",
        'the Distributed Map failed: {"Error": "States.Timeout"}',
    )
    assert domain.abandon_run(run.run_id, "again", ports=ports, now=now) == RunChange(change.run, "unchanged")
    assert domain.abandon_run("rr_unknown", "x", ports=ports, now=now) is None
    assert runs.get(run.run_id) == change.run


def test_beyond_the_review_cap_one_item_points_at_the_report_for_the_rest() -> None:
    ports = in_memory_ports()
    _, files, review, _, _, _ = parts(ports)
    rows = "".join(line(1).replace("po_1,", f"po_x{n},") for n in range(1002))  # orders nobody has
    source = files.drop("settlements/unknown.csv", with_summary(HEADER + rows).encode())
    run = domain.start_run(source, ports=ports, policy=replace(POLICY, distributed_threshold_bytes=10**7), now=now).run

    assert run.breaks == {**NONE, "missing_internal": 1002}
    assert len(review.items) == 1001
    extra: Any = review.items[-1]
    assert (extra.break_class, extra.detail, extra.report_key) == (
        "more_breaks",
        "2 more breaks: see the breaks report",
        f"reports/{run.run_id}/breaks.csv",
    )
    report = files.reports[f"reports/{run.run_id}/breaks.csv"][0].decode().splitlines()
    assert len(report) == 1 + 1002
    assert json.loads(files.reports[f"reports/{run.run_id}/summary.json"][0])["breaks"]["missing_internal"] == 1002
