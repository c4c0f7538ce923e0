"""bench/cost_meter.py's arithmetic on a recorded workload: modelled Lambda duration (CPU time plus each
call at its latency from bench/prices.json, billed per invocation to the ms), DynamoDB units from the local
cloud's write records (table and index), and the per-function and per-table breakdowns."""

from __future__ import annotations

from typing import Any

from bench.cost_meter import FULL_VCPU_MB, LATENCIES, Usage, latency_ms, modelled_ms, report


def test_a_call_takes_its_own_latency_else_its_service_s_else_the_default() -> None:
    assert latency_ms("dynamodb.TransactWriteItems") == LATENCIES["dynamodb.TransactWriteItems"]["ms"]
    assert latency_ms("dynamodb.BatchGetItem") == LATENCIES["dynamodb.*"]["ms"]
    assert latency_ms("sqs.SendMessage") == LATENCIES["sqs.*"]["ms"]
    assert latency_ms("appconfig.GetConfiguration") == LATENCIES["*"]["ms"]
    assert latency_ms("http") == LATENCIES["http"]["ms"]


def test_modelled_duration_is_cpu_time_at_the_memory_s_vcpu_share_plus_each_call_at_its_latency() -> None:
    invocation = {"function": "f", "cpu_ms": 12.5, "calls": {"dynamodb.GetItem": 2, "http": 1}}
    waits = 2 * LATENCIES["dynamodb.GetItem"]["ms"] + LATENCIES["http"]["ms"]
    assert modelled_ms(invocation, FULL_VCPU_MB) == 12.5 + waits
    assert modelled_ms(invocation, 3008) == 12.5 + waits  # above one vCPU, single-threaded work runs no faster
    assert modelled_ms(invocation, FULL_VCPU_MB // 4) == 12.5 * FULL_VCPU_MB / (FULL_VCPU_MB // 4) + waits


def test_record_threads_wait_side_by_side() -> None:
    get_item, http = LATENCIES["dynamodb.GetItem"]["ms"], LATENCIES["http"]["ms"]
    invocation = {
        "function": "f",
        "cpu_ms": 0.0,
        "calls": {"dynamodb.GetItem": 3, "http": 3},
        "main_thread_calls": {"dynamodb.GetItem": 1},
        "other_thread_calls": [{"http": 1}, {"http": 2, "dynamodb.GetItem": 2}],
    }
    assert modelled_ms(invocation, FULL_VCPU_MB) == get_item + 2 * http + 2 * get_item


def _usage() -> Usage:
    calls: list[dict[str, Any]] = [
        {"kind": "call", "service": "dynamodb", "operation": "GetItem", "units": 1.0, "unit_kind": "read"},
        {"kind": "call", "service": "sqs", "operation": "SendMessage", "units": 0.0, "unit_kind": "read"},
        {"kind": "call", "service": "sqs", "operation": "ReceiveMessage", "units": 0.0, "unit_kind": "read"},
    ]
    writes = [
        {
            "kind": "dynamodb_write",
            "table": "t-phys",
            "operation": "PutItem",
            "wru": 1,
            "index_wru": 1,
            "indexes": {"i": 1},
        },
        {
            "kind": "dynamodb_write",
            "table": "t-phys",
            "operation": "TransactWriteItems",
            "wru": 4,
            "index_wru": 0,
            "indexes": {},
        },
    ]
    invocations = [
        {"kind": "invocation", "function": "fn-a", "cpu_ms": 10.4, "calls": {"dynamodb.GetItem": 1}},
        {"kind": "invocation", "function": "fn-a", "cpu_ms": 0.2, "calls": {}},
    ]
    return Usage(
        calls=calls,
        dynamodb_writes=writes,
        worker_invocations=invocations,
        local_billed_ms={"FnA": 500},
        api_requests=1,
        functions={"FnA": ("fn-a", FULL_VCPU_MB)},
        tables={"t-phys": "TableT"},
    )


def test_the_report_prices_modelled_duration_and_every_write_unit() -> None:
    result = report(_usage(), checkouts=1, elapsed=1.0)
    get_item = LATENCIES["dynamodb.GetItem"]["ms"]
    billed_ms = (10.4 + get_item).__ceil__() + 1  # each invocation rounds up to the ms; one vCPU: no stretch
    gb_s = billed_ms / 1000 * FULL_VCPU_MB / 1024
    assert result["units_per_checkout"] == {
        "api_gateway_rest_request": 1.0,
        "lambda_request": 2.0,
        "lambda_gb_second_arm64": round(gb_s, 3),
        "sqs_request": 2.0,
        "dynamodb_write_request_unit": 6.0,
        "dynamodb_read_request_unit": 1.0,
    }
    assert result["dynamodb_wru_per_checkout"] == {"table": 5.0, "global_secondary_indexes": 1.0}
    assert result["lambda_gb_seconds_per_checkout"] == {
        "modelled": round(gb_s, 4),
        "local_wall_time": round(0.5 * FULL_VCPU_MB / 1024, 4),
    }
    assert result["tables"] == {
        "TableT": {
            "wru_per_checkout": 5.0,
            "of_which_transactional": 4.0,
            "index_wru_per_checkout": 1.0,
            "index_wru_per_checkout_by_index": {"i": 1.0},
            "usd_per_million_checkouts": 3.75,
        }
    }
    row = result["functions"]["FnA"]
    assert (row["invocations_per_checkout"], row["cpu_ms_per_invocation"], row["local_ms_per_invocation"]) == (
        2.0,
        5.3,
        250.0,
    )
    assert row["modelled_ms_per_invocation"] == billed_ms / 2
    # SQS: 2 requests at $0.40 per 1M; the naive design drops them and adds 6 transitions per order at $25 per 1M.
    sqs = result["usd_per_million_checkouts"]["sqs_request"]
    assert sqs == 0.8
    naive = result["usd_per_million_checkouts_standard_workflow_per_order"]
    assert round(naive - (result["usd_per_million_checkouts_total"] - sqs), 2) == 450.0
