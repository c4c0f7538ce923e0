"""The app as CI deploys it: synthesized by the CDK CLI v2 (`npx aws-cdk@2`, the copy package.json pins)
through cdk.json, for a concrete account and region, once per stage and region per test session.

The three synths run at once (they take ~40 s of CPU each); under pytest-xdist the first worker runs
them and the others wait for its results (a lock file in the session's shared temporary folder)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Synthesized

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "111111111111"
# (stage, region): both stages where the team deploys, and prod in the region whose ARNs differ most.
CLI_SYNTHS = (("dev", "eu-west-1"), ("prod", "eu-west-1"), ("prod", "us-east-1"))
SYNTH_TIMEOUT_SECONDS = 1200


def synth_command(stage: str) -> list[str]:
    """The deploy issue's command, word for word."""
    return ["npx", "-y", "aws-cdk@2", "synth", "-q", "-c", f"stage={stage}"]


def offline_environment(region: str, home: Path) -> dict[str, str]:
    """The CLI's environment: the account and region of a deployment, and nothing that reaches a network.

    The CLI sets CDK_DEFAULT_REGION from the SDK's region (AWS_REGION), so both name the region. Its user
    settings file (~/.cdk.json in a HOME of the run's own) sends the assembly to the run's own folder and
    turns notices off; no instance metadata, no telemetry, npm offline (the pinned CLI is installed)."""
    return {
        **os.environ,
        "CDK_DEFAULT_ACCOUNT": ACCOUNT,
        "CDK_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "HOME": str(home),
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "npm_config_offline": "true",
        "npm_config_update_notifier": "false",
    }


@dataclass(frozen=True)
class CliSynth:
    stage: str
    region: str
    returncode: int
    output: str
    outdir: Path

    def synthesized(self) -> Synthesized:
        return Synthesized(self.outdir)


def _run_all(root: Path) -> dict[tuple[str, str], CliSynth]:
    runs = {}
    for stage, region in CLI_SYNTHS:
        home = root / f"home-{stage}-{region}"
        home.mkdir(parents=True, exist_ok=True)  # another worker's attempt may have failed part way
        outdir = root / f"cdk.out-{stage}-{region}"
        (home / ".cdk.json").write_text(json.dumps({"output": str(outdir), "notices": False}))
        log = (root / f"{stage}-{region}.log").open("w")
        process = subprocess.Popen(
            synth_command(stage),
            cwd=ROOT,
            env=offline_environment(region, home),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        runs[(stage, region)] = (process, log, outdir)
    results = {}
    for (stage, region), (process, log, outdir) in runs.items():
        try:
            returncode = process.wait(timeout=SYNTH_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            returncode = process.wait()
        log.close()
        output = (root / f"{stage}-{region}.log").read_text()
        results[(stage, region)] = CliSynth(stage, region, returncode, output, outdir)
    (root / "results.json").write_text(
        json.dumps([[r.stage, r.region, r.returncode, r.output, str(r.outdir)] for r in results.values()])
    )
    return results


def _load(root: Path) -> dict[tuple[str, str], CliSynth]:
    rows = json.loads((root / "results.json").read_text())
    return {(stage, region): CliSynth(stage, region, code, out, Path(d)) for stage, region, code, out, d in rows}


@pytest.fixture(scope="session")
def cli_synths(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[dict[tuple[str, str], CliSynth]]:
    if worker_id == "master":
        yield _run_all(tmp_path_factory.mktemp("cdk-cli"))
        return
    # pytest-xdist: one folder for the whole session, shared by its workers.
    root = tmp_path_factory.getbasetemp().parent / "cdk-cli"
    root.mkdir(exist_ok=True)
    with (root.parent / "cdk-cli.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = _load(root) if (root / "results.json").exists() else _run_all(root)
        fcntl.flock(lock, fcntl.LOCK_UN)
    yield results
