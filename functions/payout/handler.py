"""Payout scheduled Lambda: the daily run that pays out every seller above the threshold (the API is
functions/payout/api.py)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.clock import iso, utc_now
from functions.common.observability import logger, metrics, tracer
from functions.payout import domain
from functions.payout.settings import ScheduledPayoutSettings
from functions.payout.store import DynamoPayoutStore, StepFunctionsSaga, WalletBalances
from functions.sellers.store import DynamoSellerStore


@dataclass(frozen=True)
class ScheduledPorts:
    store: DynamoPayoutStore
    balances: WalletBalances
    accounts: DynamoSellerStore
    saga: StepFunctionsSaga
    threshold_major: int  # configuration, fixed for the process like the ports


@functools.cache
def _scheduled_ports() -> ScheduledPorts:
    settings = ScheduledPayoutSettings.from_env()
    return ScheduledPorts(
        store=DynamoPayoutStore(settings.payouts_table),
        balances=WalletBalances(settings.wallet_table),
        accounts=DynamoSellerStore(settings.sellers_table),
        saga=StepFunctionsSaga(settings.state_machine_arn),
        threshold_major=settings.threshold_major,
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def scheduled_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge's daily rule: pay out every seller whose available balance is above the threshold."""
    ports = _scheduled_ports()
    fired_at = str(event.get("time") or iso(utc_now()))
    run = domain.run_scheduled_payouts(
        threshold_major=ports.threshold_major,
        day=fired_at[:10],
        store=ports.store,
        balances=ports.balances,
        accounts=ports.accounts,
        saga=ports.saga,
    )
    metrics.add_metric(name="ScheduledPayouts", unit=MetricUnit.Count, value=len(run.started))
    # Money due a seller who has given nowhere to pay it: visible, so the marketplace can ask for an account.
    metrics.add_metric(name="PayoutsWaitingForAccount", unit=MetricUnit.Count, value=len(run.waiting_for_account))
    logger.info(
        "scheduled payouts started",
        extra={"payouts": len(run.started), "waiting_for_account": len(run.waiting_for_account)},
    )
    return {"payouts": [p.payout_id for p in run.started], "waiting_for_account": len(run.waiting_for_account)}
