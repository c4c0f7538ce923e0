"""The scheduled money auditor: runs every check hourly, emits one metric per check (its violations) and
logs every finding with the ids it names. `payments audit` builds the same ports with `build_ports`."""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.auditor import domain
from functions.auditor.models import AuditReport
from functions.auditor.settings import AuditorSettings
from functions.auditor.store import DynamoOrders, DynamoRefundTotals, DynamoWallets, SqsDeadLetterQueues
from functions.common.clock import utc_now
from functions.common.observability import logger, metrics, tracer
from functions.ledger.store import DynamoBalanceStore, DynamoLedgerStore
from functions.psp.client import PspClient

METRIC_PREFIX = "AuditViolations_"


@dataclass(frozen=True)
class AuditPorts:
    balances: DynamoBalanceStore
    wallets: DynamoWallets
    orders: DynamoOrders
    journals: DynamoLedgerStore
    charges: PspClient
    dead_letters: SqsDeadLetterQueues
    refunds: DynamoRefundTotals
    psp_refunds: PspClient


def build_ports(settings: AuditorSettings) -> AuditPorts:
    psp = PspClient.from_settings(settings)
    return AuditPorts(
        balances=DynamoBalanceStore(settings.balances_table),
        wallets=DynamoWallets(settings.wallet_table),
        orders=DynamoOrders(settings.orders_table),
        journals=DynamoLedgerStore(settings.ledger_table, settings.balances_table),
        charges=psp,
        dead_letters=SqsDeadLetterQueues(settings.queue_urls),
        refunds=DynamoRefundTotals(settings.refunds_table),
        psp_refunds=psp,
    )


def run_audit(settings: AuditorSettings, ports: domain.Ports) -> AuditReport:
    # Each order's checks are a few reads (DynamoDB, the PSP) that wait on the network: a pool overlaps them.
    with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="audit") as pool:
        return domain.audit(
            ports,
            now=utc_now(),
            window=timedelta(seconds=settings.window_seconds),
            settle=timedelta(seconds=settings.settle_seconds),
            processing_deadline=timedelta(seconds=settings.processing_deadline_seconds),
            pause=lambda: time.sleep(settings.recheck_pause_seconds),
            each=pool.map,
        )


@functools.cache
def _settings() -> AuditorSettings:
    return AuditorSettings.from_env()


@functools.cache
def _ports() -> AuditPorts:
    return build_ports(_settings())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = run_audit(_settings(), _ports())
    for check, count in report.violations.items():
        metrics.add_metric(name=METRIC_PREFIX + check, unit=MetricUnit.Count, value=count)
    for finding in report.findings:
        logger.error("audit violation", extra={"check": finding.check, "ids": finding.ids, "detail": finding.message})
    logger.info("audit done", extra={"orders_checked": report.orders_checked, "violations": report.violations})
    return report.model_dump(mode="json")
