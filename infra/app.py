"""CDK app entry point (`cdk.json`): the payments stack with cdk-nag AwsSolutions checks.

cdk-nag runs as a policy-validation plugin: any unsuppressed finding makes synthesis fail."""

from __future__ import annotations

import json
import os
from pathlib import Path

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import stage_config
from infra.nag import acknowledge_stack_wide
from infra.stack import PaymentsStack

STACK_NAME = "Payments"
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def build_app(
    outdir: str | None = None, *, account: str | None = None, region: str | None = None
) -> tuple[App, PaymentsStack]:
    """The app; the stack's account and region are the given ones, else the CDK CLI's (CDK_DEFAULT_*: from
    the credentials, or as set), else unresolved tokens."""
    # cdk.json's context (feature flags, stage defaults) applies whether the CDK CLI or a test synthesizes.
    context = json.loads(CDK_JSON.read_text())["context"]
    app = App(outdir=outdir, context=context) if outdir else App(context=context)
    # Typed and validated per-stage settings (infra/config.py): `-c stage=prod`, `-c pspBaseUrl=...`.
    config = stage_config(app)
    stack = PaymentsStack(
        app,
        STACK_NAME,
        stage=config.stage,
        psp_base_url=config.psp_base_url,
        payout_provider_url=config.payout_provider_url,
        description=f"Marketplace payments ({config.stage}): pay-in, wallets, ledger, payouts, reconciliation",
        env=Environment(
            account=account or os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=region or os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    acknowledge_stack_wide(stack)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
