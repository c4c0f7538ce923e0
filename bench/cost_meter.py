"""Cost meter: what one 3-order checkout costs in AWS API calls, end to end, priced per 1M checkouts.

Starts the local stack with call metering on, pays N warm-up checkouts, then measures N checkouts
(each three sellers) from POST /v1/payments until every order is charged, credited and booked.
Counts every AWS call the functions make (by service and operation, DynamoDB request units), the
SQS requests Lambda's pollers make for them, Lambda invocations and billed duration, and API
requests; prices them with bench/prices.json (us-east-1 list prices with their sources).

    .venv/bin/python bench/cost_meter.py [--checkouts 20] [--json] [--template cdk.out/Payments.template.json]

Honest where local and AWS differ:
- DynamoDB write units are counted by the local cloud itself (local_stack/dynamodb_meter.py): the larger
  of the item before and after, failed conditions, transactions at 2x, and every global secondary index
  entry written.
- Lambda duration is modelled, not timed: the handler's CPU time in its worker (stretched below one vCPU:
  Lambda gives CPU in proportion to memory, a full vCPU at 1,769 MB) plus each AWS call and each other
  HTTP request at the typical latency in bench/prices.json ("latencies_ms", with sources). Each
  function's peak RSS is printed, to size its memory by.
  Local wall time (moto and loopback) is printed beside it.
- Reads are counted per call at one item under 4 KB (0.5 RRU eventually consistent, 1 strongly).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local_stack.stack import LocalStack, LocalStackConfig, aws_clients  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.quiet import wait_until_queues_drained  # noqa: E402

_PRICE_LIST = json.loads((ROOT / "bench" / "prices.json").read_text())
PRICES = _PRICE_LIST["prices"]
LATENCIES = _PRICE_LIST["latencies_ms"]
# The naive design in docs/architecture.md: per order, a Standard execution of Charge, Charged?,
# CreditWallet, BookLedger, MarkOrder and its end (Step Functions bills each state entered).
NAIVE_TRANSITIONS_PER_ORDER = 6
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html: "At 1,769 MB, a function has the
# equivalent of one vCPU".
FULL_VCPU_MB = 1769


def price(name: str, quantity: float) -> float:
    entry = PRICES[name]
    return float(entry["usd"]) * quantity / float(entry["per"])


def pay(http: urllib3.PoolManager, stack: LocalStack, key: str) -> str:
    tag = uuid.uuid4().hex[:8]
    body = {
        # Ids in runs of at most 8 hex digits: 13 or more digits in a row read as a card number (400).
        "checkout_id": f"co_{tag}",
        "buyer_id": "buyer_bench",
        "currency": "USD",
        "payment_method": "tok_visa",
        "orders": [
            {"payment_order_id": f"po_{tag}_{i}", "seller_id": f"seller_{i}", "amount": 1000 + i} for i in range(3)
        ],
    }
    response = http.request(
        "POST",
        f"{stack.api_url}/v1/payments",
        body=json.dumps(body).encode(),
        headers={"x-api-key": key, "Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"},
    )
    assert response.status == 202, response.data
    return str(json.loads(response.data)["payment_id"])


def wait_done(stack: LocalStack, aws: Any, payment_ids: list[str], timeout: float = 120) -> None:
    """Polls the payments table directly (unmetered), not the API, so polling adds no cost."""
    assert stack.cloud is not None
    table = next(n for k, n in stack.cloud.names_of("AWS::DynamoDB::Table").items() if "PaymentsTable" in k)
    deadline = time.monotonic() + timeout
    pending = set(payment_ids)
    while pending:
        for payment_id in list(pending):
            item = aws("dynamodb").get_item(
                TableName=table, Key={"pk": {"S": f"PAYMENT#{payment_id}"}, "sk": {"S": "PAYMENT"}}, ConsistentRead=True
            )
            if item["Item"]["status"]["S"] != "PROCESSING":
                assert item["Item"]["status"]["S"] == "SUCCEEDED", item
                pending.discard(payment_id)
        assert time.monotonic() < deadline, f"{len(pending)} checkouts not done"
        time.sleep(0.2)


def measure(template: Path, checkouts: int) -> dict[str, Any]:
    call_log = Path(tempfile.mkdtemp()) / "calls.jsonl"
    key = "bench-key"
    config = LocalStackConfig(
        port=free_port(), psp_port=free_port(), aws_port=free_port(), api_key=key, template=template, call_log=call_log
    )
    with open(Path(tempfile.gettempdir()) / "cost-meter-stack.log", "w") as log:
        stack = LocalStack(config, log_stream=log)
        stack.start()
        try:
            aws = aws_clients(stack.aws_endpoint)
            http = urllib3.PoolManager()
            # Warm-up: the same load first, so every execution environment the measured run needs exists and
            # has made its clients (a cold start is not a per-checkout cost at any real volume).
            wait_done(stack, aws, [pay(http, stack, key) for _ in range(checkouts)])
            wait_until_queues_drained(stack, aws)
            # Latency of one checkout on its own (warm): POST until every order is charged, credited, booked.
            single_started = time.perf_counter()
            wait_done(stack, aws, [pay(http, stack, key)])
            single_seconds = time.perf_counter() - single_started
            wait_until_queues_drained(stack, aws)
            assert stack.meter is not None and stack.cloud is not None
            stack.meter.reset()
            started = time.perf_counter()
            ids = [pay(http, stack, key) for _ in range(checkouts)]
            wait_done(stack, aws, ids)
            elapsed = time.perf_counter() - started
            wait_until_queues_drained(stack, aws)
            usage = Usage(
                calls=stack.meter.calls(),
                dynamodb_writes=stack.meter.dynamodb_writes(),
                worker_invocations=stack.meter.worker_invocations(),
                local_billed_ms=dict(stack.meter.billed_ms),
                api_requests=stack.meter.api_requests,
                functions={
                    logical_id: (spec.name, spec.memory_mb) for logical_id, spec in stack.cloud.functions.items()
                },
                tables={name: logical_id for logical_id, name in stack.cloud.names_of("AWS::DynamoDB::Table").items()},
            )
        finally:
            stack.stop()
    return {"one_checkout_seconds": round(single_seconds, 2), **report(usage, checkouts, elapsed)}


@dataclass(frozen=True)
class Usage:
    """What one measured workload did, as the local stack recorded it."""

    calls: list[dict[str, Any]]  # every AWS call (functions' and the event sources')
    dynamodb_writes: list[dict[str, Any]]  # the local cloud's WRU per write (local_stack/dynamodb_meter.py)
    worker_invocations: list[dict[str, Any]]  # per invocation: handler CPU ms and its calls
    local_billed_ms: dict[str, int]  # per logical id: wall time locally (moto and loopback), for comparison
    api_requests: int
    functions: dict[str, tuple[str, int]]  # logical id -> (function name, memory MB)
    tables: dict[str, str]  # physical table name -> logical id


def modelled_ms(invocation: dict[str, Any], memory_mb: int) -> float:
    """The duration AWS would bill: the handler's CPU time, stretched by the share of a vCPU the function's
    memory buys, plus the time it waits on its calls, each at its typical latency. Record threads wait side
    by side: the invocation waits for its own thread's calls and for the slowest record thread's."""
    main = invocation.get("main_thread_calls", invocation["calls"])
    others = invocation.get("other_thread_calls", [])
    waits = _waits(main) + max((_waits(calls) for calls in others), default=0.0)
    return float(invocation["cpu_ms"]) * cpu_stretch(memory_mb) + waits


def _waits(calls: dict[str, int]) -> float:
    return sum(latency_ms(call) * int(n) for call, n in calls.items())


def cpu_stretch(memory_mb: int) -> float:
    """Lambda gives a function CPU in proportion to its memory, one vCPU at FULL_VCPU_MB: below that, the
    same work takes longer (the local CPU time counts as one vCPU's)."""
    return max(1.0, FULL_VCPU_MB / memory_mb)


def latency_ms(call: str) -> float:
    if call in LATENCIES:
        return float(LATENCIES[call]["ms"])
    service = call.split(".", 1)[0]
    return float(LATENCIES.get(f"{service}.*", LATENCIES["*"])["ms"])


def _gb_seconds(ms: float, memory_mb: int) -> float:
    return ms / 1000 * memory_mb / 1024


def function_rows(usage: Usage, checkouts: int) -> dict[str, dict[str, Any]]:
    by_name = {name: (logical_id, memory) for logical_id, (name, memory) in usage.functions.items()}
    rows: dict[str, dict[str, float]] = {}
    calls: dict[str, Counter[str]] = {}
    for invocation in usage.worker_invocations:
        logical_id, memory = by_name[invocation["function"]]
        row = rows.setdefault(
            logical_id,
            {"memory_mb": memory, "invocations": 0, "cpu_ms": 0.0, "modelled_ms": 0.0, "local_ms": 0.0, "rss": 0.0},
        )
        row["invocations"] += 1
        row["cpu_ms"] += float(invocation["cpu_ms"])
        row["modelled_ms"] += math.ceil(modelled_ms(invocation, memory))  # Lambda bills each invocation to the ms
        row["rss"] = max(row["rss"], float(invocation.get("peak_rss_mb", 0.0)))
        calls.setdefault(logical_id, Counter()).update(invocation["calls"])
    for logical_id, ms in usage.local_billed_ms.items():
        if logical_id in rows:
            rows[logical_id]["local_ms"] = ms
    table: dict[str, dict[str, Any]] = {}
    for logical_id, row in sorted(rows.items()):
        n = row["invocations"]
        gb_s = _gb_seconds(row["modelled_ms"], int(row["memory_mb"]))
        usd = price("lambda_request", n) + price("lambda_gb_second_arm64", gb_s)
        table[logical_id] = {
            "memory_mb": row["memory_mb"],
            "invocations_per_checkout": round(n / checkouts, 2),
            "cpu_ms_per_invocation": round(row["cpu_ms"] / n, 1),
            "modelled_ms_per_invocation": round(row["modelled_ms"] / n, 1),
            "local_ms_per_invocation": round(row["local_ms"] / n, 1),
            "peak_rss_mb": row["rss"],
            "calls_per_checkout": {call: round(n / checkouts, 2) for call, n in sorted(calls[logical_id].items())},
            "usd_per_million_checkouts": round(usd * 1_000_000 / checkouts, 2),
        }
    return table


def table_rows(usage: Usage, checkouts: int) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, float]] = {}
    by_index: dict[str, Counter[str]] = {}
    for write in usage.dynamodb_writes:
        logical_id = usage.tables.get(write["table"], write["table"])
        row = rows.setdefault(logical_id, {"wru": 0.0, "index_wru": 0.0, "transact_wru": 0.0})
        row["wru"] += write["wru"]
        row["index_wru"] += write["index_wru"]
        for index, units in write.get("indexes", {}).items():
            by_index.setdefault(logical_id, Counter())[index] += units
        if write["operation"] == "TransactWriteItems":
            row["transact_wru"] += write["wru"]
    return {
        logical_id: {
            "wru_per_checkout": round(row["wru"] / checkouts, 2),
            "of_which_transactional": round(row["transact_wru"] / checkouts, 2),
            "index_wru_per_checkout": round(row["index_wru"] / checkouts, 2),
            "index_wru_per_checkout_by_index": {
                index: round(units / checkouts, 2) for index, units in sorted(by_index.get(logical_id, {}).items())
            },
            "usd_per_million_checkouts": round(
                price("dynamodb_write_request_unit", (row["wru"] + row["index_wru"]) * 1_000_000 / checkouts), 2
            ),
        }
        for logical_id, row in sorted(rows.items())
    }


def report(usage: Usage, checkouts: int, elapsed: float) -> dict[str, Any]:
    by_operation = Counter(f"{c['service']}.{c['operation']}" for c in usage.calls)
    table_wru = sum(w["wru"] for w in usage.dynamodb_writes)
    index_wru = sum(w["index_wru"] for w in usage.dynamodb_writes)
    rru = sum(c["units"] for c in usage.calls if c["service"] == "dynamodb" and c["unit_kind"] == "read")
    sqs_requests = sum(n for op, n in by_operation.items() if op.startswith("sqs."))
    memory = {logical_id: mb for logical_id, (_, mb) in usage.functions.items()}
    by_name = {name: mb for name, mb in usage.functions.values()}
    gb_seconds = sum(
        _gb_seconds(math.ceil(modelled_ms(i, by_name[i["function"]])), by_name[i["function"]])
        for i in usage.worker_invocations
    )
    local_gb_seconds = sum(_gb_seconds(ms, memory[f]) for f, ms in usage.local_billed_ms.items())
    per_checkout = {
        "api_gateway_rest_request": usage.api_requests / checkouts,
        "lambda_request": len(usage.worker_invocations) / checkouts,
        "lambda_gb_second_arm64": gb_seconds / checkouts,
        "sqs_request": sqs_requests / checkouts,
        "dynamodb_write_request_unit": (table_wru + index_wru) / checkouts,
        "dynamodb_read_request_unit": rru / checkouts,
    }
    cost_per_million = {name: price(name, quantity * 1_000_000) for name, quantity in per_checkout.items()}
    total = sum(cost_per_million.values())
    orders = 3 * checkouts
    transitions = NAIVE_TRANSITIONS_PER_ORDER * orders / checkouts
    # The same work as one Standard workflow per order: its transitions, minus the SQS it replaces.
    naive = total - cost_per_million["sqs_request"] + price("stepfunctions_standard_transition", transitions * 1e6)
    return {
        "checkouts": checkouts,
        "orders_per_checkout": 3,
        "seconds": round(elapsed, 2),
        "calls_per_checkout": {op: round(n / checkouts, 2) for op, n in sorted(by_operation.items())},
        "units_per_checkout": {k: round(v, 3) for k, v in per_checkout.items()},
        "dynamodb_wru_per_checkout": {
            "table": round(table_wru / checkouts, 2),
            "global_secondary_indexes": round(index_wru / checkouts, 2),
        },
        "lambda_gb_seconds_per_checkout": {
            "modelled": round(gb_seconds / checkouts, 4),
            "local_wall_time": round(local_gb_seconds / checkouts, 4),
        },
        "functions": function_rows(usage, checkouts),
        "tables": table_rows(usage, checkouts),
        "usd_per_million_checkouts": {k: round(v, 2) for k, v in cost_per_million.items()},
        "usd_per_million_checkouts_total": round(total, 2),
        "usd_per_million_checkouts_standard_workflow_per_order": round(naive, 2),
    }


def _by_index(row: dict[str, Any]) -> str:
    parts = [f"{index} {units}" for index, units in row["index_wru_per_checkout_by_index"].items()]
    return f"({', '.join(parts)})" if parts else ""


def print_tables(result: dict[str, Any]) -> None:
    print(f"{result['checkouts']} checkouts of 3 orders in {result['seconds']} s locally")
    print("\n| per checkout | units | $ per 1M checkouts |\n|---|---:|---:|")
    for name, units in result["units_per_checkout"].items():
        print(f"| {name} | {units} | {result['usd_per_million_checkouts'][name]} |")
    print(f"| **total** | | **{result['usd_per_million_checkouts_total']}** |")
    print("\n| function | MB | peak RSS MB | invocations | CPU ms | modelled ms | local ms | $ per 1M |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in result["functions"].items():
        print(
            f"| {name} | {row['memory_mb']:.0f} | {row['peak_rss_mb']:.0f} | {row['invocations_per_checkout']} "
            f"| {row['cpu_ms_per_invocation']} "
            f"| {row['modelled_ms_per_invocation']} | {row['local_ms_per_invocation']} "
            f"| {row['usd_per_million_checkouts']} |"
        )
    print("\n| table | WRU | of which transactional | index WRU (by index) | $ per 1M |\n|---|---:|---:|---|---:|")
    for name, row in result["tables"].items():
        print(
            f"| {name} | {row['wru_per_checkout']} | {row['of_which_transactional']} "
            f"| {row['index_wru_per_checkout']} {_by_index(row)} | {row['usd_per_million_checkouts']} |"
        )
    print(
        f"\none Standard workflow per order instead: "
        f"${result['usd_per_million_checkouts_standard_workflow_per_order']} per 1M checkouts"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkouts", type=int, default=10)
    parser.add_argument("--template", type=Path, default=ROOT / "cdk.out" / "Payments.template.json")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    args = parser.parse_args()
    if not args.template.exists():
        from local_stack.commands.synth import synth

        args.template = synth(Path(tempfile.mkdtemp()))
    result = measure(args.template, args.checkouts)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_tables(result)


if __name__ == "__main__":
    main()
