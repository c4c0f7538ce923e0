"""`payments settle`: drop a settlement file into the running local stack's settlement bucket.

  payments settle [--date YYYY-MM-DD]    asks the PSP simulator for that day's file (default: today, UTC)
  payments settle --source payout-provider [--date ...]
                                         the payout provider's file of that day (its payouts), dropped
                                         under settlements/<day>/payout-provider/
  payments settle --file PATH            drops the given file (as the --source's)
  --inject missing=po_1 --inject extra=2 differences for the simulator to write (see local_stack/psp/settlement.py):
                                         missing, amount, currency, status, duplicate, late (a merchant
                                         reference of any row type), extra, malformed, truncate (a count)
  --distributed                          reconcile through the Distributed Map, whatever the size

The drop reaches the reconciliation function through the bucket's S3 -> SQS notification, as in AWS;
the command then waits for the run and prints it (--no-wait to skip). The day's file is dropped under
settlements/<day>/, which is how the run knows its day (and replaces the day's MISSING record)."""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.reconciliation.domain import run_id_for
from functions.reconciliation.models import ObjectRef
from local_stack.psp.simulator import bearer
from local_stack.stack import STATE_FILE, aws_clients

SETTLEMENT_PREFIX = "settlements/"
# Where each source's files go within a day's folder, and the simulator route that writes them.
SOURCES = {"psp": ("", "/v1/settlements"), "payout-provider": ("payout-provider/", "/payouts/v1/settlements")}


def register(commands: Any) -> None:
    settle = commands.add_parser("settle", help="drop a settlement file into the settlement bucket")
    source = settle.add_mutually_exclusive_group()
    source.add_argument("--date", help="the day whose file the PSP simulator writes (YYYY-MM-DD, default today)")
    source.add_argument("--file", type=Path, help="a settlement file to drop as is")
    settle.add_argument("--source", choices=sorted(SOURCES), default="psp", help="whose file it is (default psp)")
    settle.add_argument("--inject", action="append", default=[], metavar="KIND=VALUE", help="simulator differences")
    settle.add_argument("--distributed", action="store_true", help="force the Distributed Map path")
    settle.add_argument("--state-file", type=Path, default=STATE_FILE, help="the running stack's state file")
    settle.add_argument("--no-wait", action="store_true", help="do not wait for the reconciliation run")
    settle.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the run")
    settle.set_defaults(run=run)


def load_state(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise SystemExit(f"{path} not found: is `payments local` running?")
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def settlement_bucket(state: dict[str, Any]) -> str:
    buckets = [str(name) for logical_id, name in state["buckets"].items() if logical_id.startswith("SettlementBucket")]
    if len(buckets) != 1:
        raise SystemExit(f"no single settlement bucket in the state file: {state['buckets']}")
    return buckets[0]


def simulator_file(psp_url: str, api_key: str, query: dict[str, Any], *, source: str = "psp") -> tuple[str, bytes]:
    """The day's file as the PSP simulator (or the payout provider's, on the same server) writes it."""
    route = SOURCES[source][1]
    request = urllib.request.Request(  # noqa: S310 - the loopback simulator
        f"{psp_url}{route}?{urllib.parse.urlencode(query, doseq=True)}", headers=bearer(api_key)
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        body = json.loads(response.read())
    return str(body["filename"]), str(body["csv"]).encode()


def source_of(state: dict[str, Any], source: str) -> tuple[str, str]:
    """The URL and key of the simulator that writes that source's file (the PSP's, or the payout provider's)."""
    if source == "psp":
        return state["psp_url"], state["psp_api_key"]
    return state.get("payout_provider_url") or state["psp_url"], state["payout_provider_api_key"]


def drop(
    state: dict[str, Any], *, name: str, content: bytes, day: str, distributed: bool = False, source: str = "psp"
) -> ObjectRef:
    """Put the file under settlements/<day>/ (the payout provider's under its own folder there) and return the
    object (bucket, key, version, ETag)."""
    bucket = settlement_bucket(state)
    key = f"{SETTLEMENT_PREFIX}{day}/{SOURCES[source][0]}{name}"
    extra: dict[str, Any] = {"Metadata": {"reconcile-mode": "distributed"}} if distributed else {}
    put = aws_clients(state["aws_endpoint"])("s3").put_object(
        Bucket=bucket, Key=key, Body=content, ContentType="text/csv", **extra
    )
    return ObjectRef(bucket=bucket, key=key, version=put.get("VersionId"), etag=str(put["ETag"]).strip('"'))


class RunNotFinished(Exception):
    """The run did not leave RUNNING in time; `unreachable` is the API's last failure to answer, if any."""

    def __init__(self, unreachable: Exception | None) -> None:
        super().__init__(str(unreachable) if unreachable else "still RUNNING")
        self.unreachable = unreachable


def wait_for_run(state: dict[str, Any], run_id: str, timeout: float) -> dict[str, Any]:
    """The run once it left RUNNING; RunNotFinished if it did not by the deadline."""
    deadline = time.monotonic() + timeout
    unreachable: Exception | None = None
    request = urllib.request.Request(  # noqa: S310 - the loopback API
        f"{state['api_url']}/v1/reconciliations/{run_id}", headers={"x-api-key": state["api_key"]}
    )
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                run: dict[str, Any] = json.loads(response.read())
            unreachable = None
            if run.get("status") != "RUNNING":
                return run
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
            unreachable = None  # not recorded yet: the run starts when the file's event is handled
        except (TimeoutError, urllib.error.URLError) as error:
            unreachable = error  # one slow answer (a busy machine, a cold function): ask again until the deadline
        time.sleep(0.5)
    raise RunNotFinished(unreachable)


def run(args: argparse.Namespace) -> int:
    state = load_state(args.state_file)
    if args.file is not None:
        day = datetime.now(UTC).date().isoformat()
        name, content = args.file.name, args.file.read_bytes()
    else:
        day = args.date or datetime.now(UTC).date().isoformat()
        query: dict[str, list[str]] = {"date": [day]}
        for item in args.inject:
            kind, _, value = item.partition("=")
            query.setdefault(kind, []).append(value)
        name, content = simulator_file(*source_of(state, args.source), query, source=args.source)
    source = drop(state, name=name, content=content, day=day, distributed=args.distributed, source=args.source)
    run_id = run_id_for(source)
    print(f"dropped s3://{source.bucket}/{source.key} ({len(content)} bytes); run {run_id}", flush=True)
    if args.no_wait:
        return 0
    try:
        result = wait_for_run(state, run_id, args.timeout)
    except RunNotFinished as late:
        if late.unreachable is not None:
            print(f"the API at {state['api_url']} did not answer ({late.unreachable})", flush=True)
        else:
            print(f"the run did not finish within {args.timeout:.0f}s", flush=True)
        return 1
    print(json.dumps(result, indent=2), flush=True)
    if result.get("status") == "FAILED":
        print(f"the run FAILED ({result.get('reason')}): {result.get('error')}", flush=True)
    return 0 if result.get("status") == "COMPLETED" else 1
