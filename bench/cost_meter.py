"""Cost meter: what one 3-order checkout costs in AWS API calls, end to end, priced per 1M checkouts.

Starts the local stack with call metering on, pays a warm-up checkout, then measures N checkouts
(each three sellers) from POST /v1/payments until every order is charged, credited and booked.
Counts every AWS call the functions make (by service and operation, DynamoDB request units), the
SQS requests Lambda's pollers make for them, Lambda invocations and billed duration, and API
requests; prices them with bench/prices.json (us-east-1 list prices with their sources).

    .venv/bin/python bench/cost_meter.py [--checkouts 10] [--template cdk.out/Payments.template.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local_stack.stack import LocalStack, LocalStackConfig, aws_clients  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.quiet import wait_until_queues_drained  # noqa: E402

PRICES = json.loads((ROOT / "bench" / "prices.json").read_text())["prices"]


def price(name: str, quantity: float) -> float:
    entry = PRICES[name]
    return float(entry["usd"]) * quantity / float(entry["per"])


def pay(http: urllib3.PoolManager, stack: LocalStack, key: str) -> str:
    body = {
        "checkout_id": f"co_{uuid.uuid4().hex[:10]}",
        "buyer_id": "buyer_bench",
        "currency": "USD",
        "payment_method": "tok_visa",
        "orders": [
            {"payment_order_id": f"po_{uuid.uuid4().hex[:16]}", "seller_id": f"seller_{i}", "amount": 1000 + i}
            for i in range(3)
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
            wait_done(stack, aws, [pay(http, stack, key)])  # warm-up: cold starts are not per-checkout cost
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
            calls = stack.meter.calls()
            memory = {logical_id: spec.memory_mb for logical_id, spec in stack.cloud.functions.items()}
            invocations = dict(stack.meter.invocations)
            billed_ms = dict(stack.meter.billed_ms)
            api_requests = stack.meter.api_requests
        finally:
            stack.stop()
    return {
        "one_checkout_seconds": round(single_seconds, 2),
        **report(calls, invocations, billed_ms, memory, api_requests, checkouts, elapsed),
    }


def report(
    calls: list[dict[str, Any]],
    invocations: dict[str, int],
    billed_ms: dict[str, int],
    memory: dict[str, int],
    api_requests: int,
    checkouts: int,
    elapsed: float,
) -> dict[str, Any]:
    by_operation = Counter(f"{c['service']}.{c['operation']}" for c in calls)
    wru = sum(c["units"] for c in calls if c["service"] == "dynamodb" and c["unit_kind"] == "write")
    rru = sum(c["units"] for c in calls if c["service"] == "dynamodb" and c["unit_kind"] == "read")
    sqs_requests = sum(n for op, n in by_operation.items() if op.startswith("sqs."))
    gb_seconds = sum(ms / 1000 * memory[f] / 1024 for f, ms in billed_ms.items())
    total_invocations = sum(invocations.values())
    per_checkout = {
        "api_gateway_rest_request": api_requests / checkouts,
        "lambda_request": total_invocations / checkouts,
        "lambda_gb_second_arm64": gb_seconds / checkouts,
        "sqs_request": sqs_requests / checkouts,
        "dynamodb_write_request_unit": wru / checkouts,
        "dynamodb_read_request_unit": rru / checkouts,
    }
    cost_per_million = {name: price(name, quantity * 1_000_000) for name, quantity in per_checkout.items()}
    return {
        "checkouts": checkouts,
        "orders_per_checkout": 3,
        "seconds": round(elapsed, 2),
        "calls_per_checkout": {op: round(n / checkouts, 2) for op, n in sorted(by_operation.items())},
        "invocations_per_checkout": {f: round(n / checkouts, 2) for f, n in sorted(invocations.items())},
        "units_per_checkout": {k: round(v, 3) for k, v in per_checkout.items()},
        "usd_per_million_checkouts": {k: round(v, 2) for k, v in cost_per_million.items()},
        "usd_per_million_checkouts_total": round(sum(cost_per_million.values()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkouts", type=int, default=10)
    parser.add_argument("--template", type=Path, default=ROOT / "cdk.out" / "Payments.template.json")
    args = parser.parse_args()
    if not args.template.exists():
        from local_stack.commands.synth import synth

        args.template = synth(Path(tempfile.mkdtemp()))
    print(json.dumps(measure(args.template, args.checkouts), indent=2))


if __name__ == "__main__":
    main()
