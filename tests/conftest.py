"""Shared fixtures: fake AWS credentials for every test (nothing may reach AWS), and one CDK synthesis
per test session (it takes ~15 s and ~0.5 GB)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "PaymentsTest",
        "POWERTOOLS_SERVICE_NAME": "tests",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


class Synthesized:
    def __init__(self, outdir: Path, app: Any = None) -> None:
        self.outdir = outdir
        # The CDK app the template came from (its construct tree: each function's settings); None for a
        # template the CDK CLI synthesized.
        self.app = app
        self.template_path = outdir / "Payments.template.json"
        self.template: dict[str, Any] = json.loads(self.template_path.read_text())

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == resource_type}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    from local_stack.commands.synth import synthesize_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    yield Synthesized(outdir, synthesize_app(outdir))
