"""Reconciliation throughput and memory: the reconciler's stream path over a generated settlement file,
next to a plain `csv.reader` pass over the same file, in the same run, for 100k and 1M rows.

    .venv/bin/python -m bench.reconciliation                 # 100,000 and 1,000,000 rows
    .venv/bin/python -m bench.reconciliation --rows 100000   # one size

Not a test (make test does not run it). Shared machines are noisy, so each size runs in rounds (5 by
default): a round runs the plain pass and the reconciler once each, each in a fresh subprocess so its
peak RSS is its own, and the table shows each pass's best rate, their ratio, and the range of the rounds'
own ratios. "peak MB" is the growth of the resident set during a pass (VmHWM, reset just before, minus
VmRSS just before; Linux), the largest of the rounds.

The reconciler runs exactly the code the Lambda runs (parse, validate, chunked classification, claims,
settlement journals, the tally and its spooled breaks CSV). Its ports are in-memory stand-ins for DynamoDB
and SQS, so the figures are the reconciler's and not the network's: the executor table is the file's
orders in memory, built before the timed pass (it is not the reconciler's memory); claims are accepted
and counted; journals are rendered as the SQS adapter renders them, and counted. One row in 10,000 carries a
changed amount (a break)."""

from __future__ import annotations

import argparse
import csv
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import itemgetter
from pathlib import Path

from functions.common.events import JournalPosting
from functions.reconciliation.domain import reconcile_lines
from functions.reconciliation.models import Claim, ClaimBatch, ObjectRef, Order, Run
from functions.reconciliation.settlement_file import SETTLEMENT_COLUMNS
from functions.reconciliation.store import SpooledBreaksCsv, settlement_text

START = datetime(2026, 5, 1, tzinfo=UTC)
BREAK_EVERY = 10_000


_DIGITS = itemgetter(slice(3, None))


def _order_number(payment_order_id: str) -> int:
    """n of po_<n> (-1 for any other id)."""
    digits = payment_order_id[3:]
    return int(digits) if payment_order_id.startswith("po_") and digits.isdigit() else -1


def amount_of(index: int) -> int:
    return 1000 + index % 5000


def generate(path: Path, rows: int) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(SETTLEMENT_COLUMNS)
        for i in range(rows):
            amount = amount_of(i) + (100 if i % BREAK_EVERY == BREAK_EVERY - 1 else 0)
            fee = (amount * 29 + 500) // 1000 + 30
            created = (START + timedelta(milliseconds=50 * i)).isoformat(timespec="milliseconds")
            writer.writerow(
                (
                    f"ch_{i:012d}",
                    f"po_{i:09d}",
                    "charge",
                    amount,
                    "USD",
                    fee,
                    amount - fee,
                    "succeeded",
                    created.replace("+00:00", "Z"),
                    "2026-05-03",
                )
            )


class ExecutorTable:
    """The executor table's orders for a generated file, in memory: po_<n> charged as ch_<n> for amount_of(n)
    (the file's break rows carry another amount), decided when its row was created. Kept in a list by n,
    so a lookup costs what the adapter's own work on a BatchGetItem answer would, not a hash probe into a
    table of a million."""

    def __init__(self, rows: int) -> None:
        self.by_number = [
            Order(
                f"po_{i:09d}",
                "SUCCEEDED",
                amount_of(i),
                "USD",
                f"ch_{i:012d}",
                (START + timedelta(milliseconds=50 * i)).isoformat(timespec="milliseconds"),
                "sl_bench",
            )
            for i in range(rows)
        ]

    def orders(self, payment_order_ids: Sequence[str]) -> list[Order | None]:
        # A BatchGetItem's answer (its I/O is not measured): each id's order, None if there is none
        if all(map(str.startswith, payment_order_ids, repeat("po_"))):
            try:
                return list(map(self.by_number.__getitem__, map(int, map(_DIGITS, payment_order_ids))))
            except (ValueError, IndexError):
                pass
        return [
            self.by_number[n] if 0 <= (n := _order_number(po)) < len(self.by_number) else None
            for po in payment_order_ids
        ]

    def succeeded_between(self, start: datetime, end: datetime) -> Iterator[list[Order]]:
        return iter(())


class CountingClaims:
    def __init__(self) -> None:
        self.settled = 0

    def claims(self, payment_order_ids: Sequence[str]) -> dict[str, Claim]:
        return {}

    def settle(self, batch: ClaimBatch) -> None:
        self.settled += len(batch.lines)

    def open_break(self, claim: Claim) -> None:
        pass

    def awaiting_before(self, before: datetime) -> Iterator[Claim]:
        return iter(())

    def escalate(self, claim: Claim, run_id: str) -> bool:
        return False

    def escalated_by(self, run_id: str) -> Iterator[Claim]:
        return iter(())


class CountingPostings:
    def __init__(self) -> None:
        self.journals = 0
        self.bytes = 0

    def post(self, journals: Sequence[JournalPosting]) -> None:
        self.journals += len(journals)
        self.bytes += sum(len(j.model_dump_json()) for j in journals)  # the SQS bodies, as the adapter renders them


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(field)


def measure(mode: str, path: Path, rows: int) -> dict[str, float | int]:
    table = ExecutorTable(rows) if mode == "reconciler" else None
    gc.freeze()  # the table stands in for DynamoDB, outside the function's heap: the collector skips it
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak resident set (VmHWM) to the current one
    before = _status_mb("VmRSS")
    started = time.perf_counter()
    if table is None:
        with path.open(newline="") as lines:
            count = sum(1 for _ in csv.reader(lines)) - 1
        extra: dict[str, int] = {}
    else:
        run = Run(run_id="rr_bench", source=ObjectRef(bucket="b", key=str(path)), created_at=START.isoformat())
        claims, postings = CountingClaims(), CountingPostings()
        with path.open("rb") as raw, settlement_text(raw) as lines:  # decoded as the function decodes S3's stream
            tally = reconcile_lines(
                run, lines, orders=table, claims=claims, postings=postings, breaks_log=SpooledBreaksCsv()
            )
            count = tally.rows
            extra = {"matched": tally.matched, "breaks": sum(tally.breaks.values()), "journals": postings.journals}
    elapsed = time.perf_counter() - started
    peak = _status_mb("VmHWM")
    return {"rows": count, "seconds": elapsed, "rows_per_s": count / elapsed, "peak_mb": peak - before, **extra}


def _pass(mode: str, path: Path, size: int) -> dict[str, float | int]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.reconciliation", "--measure", mode, str(path), str(size)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float | int] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="file sizes (default 100000 and 1000000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of one pass each, alternating (default 5)")
    parser.add_argument("--measure", nargs=3, metavar=("MODE", "PATH", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]), int(args.measure[2]))))
        return 0
    sizes = args.rows or [100_000, 1_000_000]
    modes = ("csv.reader", "reconciler")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"best of {args.rounds} rounds; a round runs each pass once, in a fresh process, one after the other")
        print(f"{'rows':>10} {'pass':<12} {'rows/s':>12} {'seconds':>8} {'peak MB':>8}  ratio  (each round)")
        for size in sizes:
            path = Path(tmp) / f"settlement-{size}.csv"
            generate(path, size)
            rounds = [{mode: _pass(mode, path, size) for mode in modes} for _ in range(args.rounds)]
            best = {mode: max((r[mode] for r in rounds), key=lambda result: result["rows_per_s"]) for mode in modes}
            peak = {mode: max(r[mode]["peak_mb"] for r in rounds) for mode in modes}
            each = sorted(r["reconciler"]["rows_per_s"] / r["csv.reader"]["rows_per_s"] for r in rounds)
            plain = best["csv.reader"]["rows_per_s"]
            for mode, result in best.items():
                line = (
                    f"{size:>10,} {mode:<12} {result['rows_per_s']:>12,.0f} {result['seconds']:>8.2f} "
                    f"{peak[mode]:>8.1f}  {result['rows_per_s'] / plain:.0%}"
                )
                if mode == "reconciler":
                    line += (
                        f"   ({each[0]:.0%}-{each[-1]:.0%}; matched {result['matched']:,},"
                        f" breaks {result['breaks']:,}, journals {result['journals']:,})"
                    )
                print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
