"""Cold start: how long a fresh Python process takes to import each Lambda's handler module, next to the
floor every function pays anyway (`import boto3` and one Powertools Logger, Metrics and Tracer).

    .venv/bin/python -m bench.cold_start [--rounds 5] [--bytecode deployed|none|all] [--json]
    .venv/bin/python -m bench.cold_start --profile functions.wallet.handler   # what it imports beyond the floor

Not a test (make test does not run it); run `make synth` first. The handlers are read from the synthesized
template (every AWS::Lambda::Function whose Handler is in `functions.`), so a new Lambda is measured without
editing this file. A function is "api" when an API Gateway method integrates with it, else "worker" (SQS,
DynamoDB stream, schedule, S3 or Step Functions). Each import runs in its own fresh interpreter and is timed
inside it (interpreter start-up is not counted). Shared machines are noisy, so the runs are interleaved:
each round imports the floor and every handler module once, with the floor repeated between handlers so
that load hits both alike; the table shows each one's best time over the rounds and its ratio to the floor's
best.

Bytecode is modelled on the deployed function: the asset (infra/bundle.py) ships no .pyc files, so on
Lambda every cold start compiles our modules and the bundled dependencies (Powertools, pydantic, ...) from
source, while the standard library and the runtime's own boto3 stack are precompiled. So, by default, a
private bytecode cache holds only the standard library and the runtime-provided packages, and nothing is
written while timing. `--bytecode none` precompiles the standard library only (boto3 compiled on every
start too, as a plain .venv run with PYTHONDONTWRITEBYTECODE, which `make` sets, does); `--bytecode all`
precompiles everything (a warm developer machine).
The repository and .venv are left without __pycache__ files either way."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "cdk.out" / "Payments.template.json"
FLOOR = "floor"
FLOOR_CODE = "import boto3\nfrom aws_lambda_powertools import Logger, Metrics, Tracer\nLogger(); Metrics(); Tracer()\n"
# How often the floor runs between handler imports within one round.
FLOOR_EVERY = 4
MARK = "-- floor imported --"
# Issue 14's targets, as ratios to the floor.
TARGETS = {"api": 1.6, "worker": 1.3}
# The packages the Lambda runtime provides (the Makefile's RUNTIME_PROVIDED, as import names).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six")


@dataclass(frozen=True)
class LambdaHandler:
    function: str  # the template's logical id
    handler: str  # "functions.wallet.handler.handler"
    kind: str  # "api" or "worker"

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]


def _api_functions(resources: Mapping[str, Any]) -> set[str]:
    """Logical ids of the functions an API Gateway method integrates with (Integration.Uri names them)."""
    found: set[str] = set()
    for resource in resources.values():
        if resource.get("Type") != "AWS::ApiGateway::Method":
            continue
        uri = resource.get("Properties", {}).get("Integration", {}).get("Uri")
        found.update(_get_att_targets(uri))
    return found


def _get_att_targets(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::GetAtt" and isinstance(value, list) and value:
                yield str(value[0])
            else:
                yield from _get_att_targets(value)
    elif isinstance(node, list):
        for item in node:
            yield from _get_att_targets(item)


def discover(template: Mapping[str, Any]) -> list[LambdaHandler]:
    """Every function of ours in the template (CDK's own helper functions, e.g. `index.handler`, are not)."""
    resources = template.get("Resources", {})
    api = _api_functions(resources)
    handlers = [
        LambdaHandler(function=logical_id, handler=handler, kind="api" if logical_id in api else "worker")
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::Lambda::Function"
        and isinstance(handler := resource.get("Properties", {}).get("Handler"), str)
        and handler.startswith("functions.")
    ]
    return sorted(handlers, key=lambda h: (h.kind, h.handler))


def import_code(module: str) -> str:
    return FLOOR_CODE if module == FLOOR else f"import {module}\n"


def child_env(pycache: str, *, write_bytecode: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(
        PYTHONPYCACHEPREFIX=pycache,
        PYTHONPATH=str(ROOT),
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="cold-start-bench",
        POWERTOOLS_METRICS_NAMESPACE="ColdStartBench",
    )
    return env


def time_import(module: str, env: Mapping[str, str]) -> float:
    """Seconds a fresh interpreter spends importing `module` (the floor's code for FLOOR)."""
    timed = (
        "import time\n"
        "_start = time.perf_counter()\n"
        f"exec(compile({import_code(module)!r}, '<cold-start>', 'exec'))\n"
        "print(time.perf_counter() - _start)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", timed], env=dict(env), cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def round_order(modules: list[str]) -> list[str]:
    """One round: the floor first, then the modules with the floor again after every FLOOR_EVERY of them."""
    order = [FLOOR]
    for index, module in enumerate(modules, start=1):
        order.append(module)
        if index % FLOOR_EVERY == 0 and index != len(modules):
            order.append(FLOOR)
    return order


def prepare_bytecode(pycache: str, modules: list[str], bytecode: str) -> None:
    """Fill the private cache by importing everything once, then, unless `bytecode` is "all", drop our modules
    and every site-packages module (but the runtime's boto3 stack when `bytecode` is "deployed")."""
    env = child_env(pycache, write_bytecode=True)
    for module in [FLOOR, *modules]:
        time_import(module, env)
    if bytecode == "all":
        return
    cache = Path(pycache)
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    site_cache = cache / purelib.relative_to(purelib.anchor)
    kept = RUNTIME_PROVIDED if bytecode == "deployed" else ()
    for entry in site_cache.iterdir() if site_cache.exists() else ():
        if entry.name not in kept:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.rmtree(cache / ROOT.relative_to(ROOT.anchor), ignore_errors=True)


def measure(handlers: list[LambdaHandler], rounds: int, bytecode: str = "deployed") -> dict[str, Any]:
    modules = list(dict.fromkeys(h.module for h in handlers))
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cold-start-pycache-") as pycache:
        prepare_bytecode(pycache, modules, bytecode)
        env = child_env(pycache, write_bytecode=False)
        for _ in range(rounds):
            for module in round_order(modules):
                seconds = time_import(module, env)
                best[module] = min(seconds, best.get(module, seconds))
    return report(handlers, best, rounds, bytecode)


def report(handlers: list[LambdaHandler], best: Mapping[str, float], rounds: int, bytecode: str) -> dict[str, Any]:
    floor = best[FLOOR]
    return {
        "rounds": rounds,
        "bytecode": bytecode,
        "floor_seconds": round(floor, 4),
        "handlers": [
            {
                "handler": h.handler,
                "function": h.function,
                "kind": h.kind,
                "seconds": round(best[h.module], 4),
                "ratio": round(best[h.module] / floor, 2),
                "target": TARGETS[h.kind],
            }
            for h in handlers
        ],
    }


def table(result: Mapping[str, Any]) -> str:
    rows = result["handlers"]
    width = max(len(r["handler"]) for r in rows)
    lines = [
        f"floor (import boto3 + Logger, Metrics, Tracer): {result['floor_seconds']:.3f} s, "
        f"best of {result['rounds']}, bytecode: {result['bytecode']}",
        "",
        f"| {'handler':<{width}} | kind   | best s | x floor | target |",
        f"|{'-' * (width + 2)}|--------|-------:|--------:|-------:|",
    ]
    lines += [
        f"| {r['handler']:<{width}} | {r['kind']:<6} | {r['seconds']:6.3f} | {r['ratio']:7.2f} | "
        f"{TARGETS[r['kind']]:>6} |"
        for r in rows
    ]
    return "\n".join(lines)


def profile(module: str, bytecode: str) -> str:
    """The slowest imports `module` adds beyond the floor, by cumulative time (-X importtime)."""
    with tempfile.TemporaryDirectory(prefix="cold-start-pycache-") as pycache:
        prepare_bytecode(pycache, [module], bytecode)
        env = child_env(pycache, write_bytecode=False)
        code = FLOOR_CODE + f"import sys\nprint({MARK!r}, file=sys.stderr)\n" + import_code(module)
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
        )
    after_floor = done.stderr.split(MARK, 1)[-1]
    entries: list[tuple[int, str]] = []
    for line in after_floor.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        entries.append((int(cumulative), name))
    entries.sort(reverse=True)
    return "\n".join(f"{micros / 1e6:7.3f} s  {name}" for micros, name in entries[:40])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--bytecode",
        choices=("deployed", "none", "all"),
        default="deployed",
        help="precompiled: deployed, the standard library and boto3 stack, as on Lambda (default); "
        "none: the standard library only; all: everything",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--profile", metavar="MODULE", help="list the imports MODULE adds beyond the floor")
    args = parser.parse_args()
    if args.profile:
        print(profile(args.profile, args.bytecode))
        return
    if not args.template.exists():
        parser.error(f"{args.template} not found: run `make synth` first")
    handlers = discover(json.loads(args.template.read_text()))
    result = measure(handlers, args.rounds, args.bytecode)
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
