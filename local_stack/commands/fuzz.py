"""`payments fuzz --requests N --seed S`: seeded, mutated requests (bodies, headers, paths, methods,
webhook signatures) to every public route of the local stack, over loopback HTTP.

It targets the running local stack (`payments local`, found by its state file) or, when none runs,
starts one for the run on free ports. It prints one line and exits 1 on any 5xx, on any request that
must change nothing but changed something, or on any answer other than the request expected:

  fuzz: N requests, 0 5xx, R rejected (4xx), A accepted, W rejected-wrote-nothing, T s"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from local_stack.commands.settle import load_state
from local_stack.commands.synth import synth
from local_stack.fuzzing.runner import CHUNK, FuzzReport, FuzzRun, FuzzTarget
from local_stack.fuzzing.state import StackResources
from local_stack.stack import DEFAULT_TEMPLATE, STATE_FILE, LocalStack, LocalStackConfig, aws_clients

# The signing secret's logical id in the template (its physical name in moto starts with the stack name).
WEBHOOK_SECRET_LOGICAL_ID = "PspWebhooksSigningSecret"
PAYOUT_WEBHOOK_SECRET_LOGICAL_ID = "PayoutProviderSigningSecret"


def register(commands: Any) -> None:
    fuzz = commands.add_parser("fuzz", help="seeded mutated requests to every public route; 0 5xx expected")
    fuzz.add_argument("--requests", type=int, default=1000, help="how many requests to send (default 1000)")
    fuzz.add_argument("--seed", type=int, default=1, help="the same seed sends the same requests")
    fuzz.add_argument("--chunk", type=int, default=CHUNK, help="requests per write / no-write round")
    fuzz.add_argument("--state-file", type=Path, default=STATE_FILE, help="a running stack's state file")
    fuzz.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="template for a stack started here")
    fuzz.set_defaults(run=run)


def resources_from(
    tables: dict[str, str], queues: dict[str, str], machines: dict[str, str], buckets: dict[str, str]
) -> StackResources:
    return StackResources(
        tables=tuple(sorted(tables.values())),
        queue_urls=tuple(sorted(url for logical_id, url in queues.items() if "Dlq" not in logical_id)),
        dead_letter_queue_urls=tuple(sorted(url for logical_id, url in queues.items() if "Dlq" in logical_id)),
        state_machine_arns=tuple(sorted(machines.values())),
        buckets=tuple(sorted(buckets.values())),
    )


def target_of_stack(stack: LocalStack) -> FuzzTarget:
    """A stack started in this process: everything is known."""
    assert stack.cloud is not None and stack.psp_simulator is not None and stack.psp_simulator.webhooks.secret
    payout_secret = stack.psp_simulator.payout_provider.webhooks.secret
    assert payout_secret
    queues = {r.logical_id: r.ref for r in stack.cloud.physical.values() if r.type == "AWS::SQS::Queue"}
    return FuzzTarget(
        api_url=stack.api_url,
        api_key=stack.config.api_key,
        webhook_secret=stack.psp_simulator.webhooks.secret,
        payout_webhook_secret=payout_secret,
        aws_endpoint=stack.aws_endpoint,
        resources=resources_from(
            stack.cloud.names_of("AWS::DynamoDB::Table"),
            queues,
            stack.cloud.state_machines,
            stack.cloud.names_of("AWS::S3::Bucket"),
        ),
    )


def target_of_state(state: dict[str, Any]) -> FuzzTarget:
    """A stack running in another process: its state file, and the signing secret read from its moto."""
    from functions.psp_webhooks.signatures import secrets_from

    secrets = aws_clients(state["aws_endpoint"])("secretsmanager")
    listed = secrets.list_secrets()["SecretList"]

    def signing_secret(logical_id: str) -> str:
        arns = [s["ARN"] for s in listed if logical_id in s["Name"]]
        if len(arns) != 1:
            raise SystemExit(f"expected one {logical_id} in the running stack, found {len(arns)}")
        return secrets_from(secrets.get_secret_value(SecretId=arns[0])["SecretString"])[0]

    return FuzzTarget(
        api_url=state["api_url"],
        api_key=state["api_key"],
        webhook_secret=signing_secret(WEBHOOK_SECRET_LOGICAL_ID),
        payout_webhook_secret=signing_secret(PAYOUT_WEBHOOK_SECRET_LOGICAL_ID),
        aws_endpoint=state["aws_endpoint"],
        resources=resources_from(state["tables"], state["queues"], state["state_machines"], state["buckets"]),
    )


def fuzz(target: FuzzTarget, *, requests: int, seed: int, chunk: int = CHUNK) -> FuzzReport:
    return FuzzRun(target, chunk=chunk).run(requests=requests, seed=seed)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _running(state_file: Path) -> bool:
    if not state_file.exists():
        return False
    pid = int(load_state(state_file)["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _print(report: FuzzReport) -> int:
    for problem in report.problems():
        print(problem, flush=True)
    for change in report.background_changes:
        print(f"background change (not a request's): {change}", flush=True)
    print(report.line(), flush=True)
    return 0 if report.ok else 1


def run(args: argparse.Namespace) -> int:
    if _running(args.state_file):
        return _print(
            fuzz(target_of_state(load_state(args.state_file)), requests=args.requests, seed=args.seed, chunk=args.chunk)
        )
    if not args.template.exists():
        print(f"synthesizing the CDK app into {args.template.parent} ...", flush=True)
        synth(args.template.parent)
    config = LocalStackConfig(port=_free_port(), psp_port=_free_port(), aws_port=_free_port(), template=args.template)
    with tempfile.NamedTemporaryFile("w", prefix="payments-fuzz-", suffix=".log", delete=False) as stack_log:
        print(f"no local stack running: starting one (its log: {stack_log.name})", flush=True)
        stack = LocalStack(config, log_stream=stack_log)
        stack.start()
        try:
            report = fuzz(target_of_stack(stack), requests=args.requests, seed=args.seed, chunk=args.chunk)
        finally:
            stack.stop()
    return _print(report)
