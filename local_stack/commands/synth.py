"""`payments synth`: synthesize the CDK app (cdk-nag checked) into a cloud assembly."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from local_stack.stack import DEFAULT_TEMPLATE
from local_stack.template import ACCOUNT_ID, REGION


def synthesize_app(outdir: Path) -> Any:
    """The synthesized CDK app (its construct tree) of the local stack's template: for the local account and
    region, concrete as in a real deployment."""
    from infra.app import build_app

    app, _ = build_app(str(outdir), account=ACCOUNT_ID, region=REGION)
    app.synth()
    return app


def synth(outdir: Path) -> Path:
    """The local stack's template."""
    from infra.app import STACK_NAME

    synthesize_app(outdir)
    return outdir / f"{STACK_NAME}.template.json"


def register(commands: Any) -> None:
    command = commands.add_parser("synth", help="synthesize the CDK app (cdk-nag checked) into cdk.out")
    command.add_argument("--outdir", default=str(DEFAULT_TEMPLATE.parent))
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(synth(Path(args.outdir)))
    return 0
