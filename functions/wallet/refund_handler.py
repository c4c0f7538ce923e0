"""Wallet refunds Lambda: applies each refund's debit (or restore) once and hands its journal to the ledger."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.observability import correlate, logger, metrics, tracer
from functions.common.queues import BatchOptions, QueuePublisher, SqsFailedRecords, consume_batch, record_model
from functions.common.refund_events import RefundMoney
from functions.wallet import refunds
from functions.wallet.settings import WalletRefundSettings
from functions.wallet.store import DynamoWalletStore


@dataclass(frozen=True)
class RefundPorts:
    store: DynamoWalletStore
    ledger: QueuePublisher
    # A restore waits, by age, for its refund's debit, a debit for its order's credit (functions/wallet/
    # settings.py): each failed record is rescheduled on the refunds queue with backoff, or dead-lettered.
    options: BatchOptions


@functools.cache
def _ports() -> RefundPorts:
    settings = WalletRefundSettings.from_env()
    return RefundPorts(
        store=DynamoWalletStore(settings.wallet_table),
        ledger=QueuePublisher(settings.ledger_postings_queue_url),
        options=BatchOptions(failed_records=SqsFailedRecords(settings.retry_policy, settings.dead_letter_queue_url)),
    )


_RECORD = record_model(RefundMoney)


def _apply(message: RefundMoney) -> None:
    correlate(message.payment_id, payment_order_id=message.payment_order_id, refund_id=message.refund_id)
    ports = _ports()
    moved = refunds.apply_refund_money(message, store=ports.store, ledger=ports.ledger)
    logger.info("wallet refund", extra={"movement": message.movement, "applied_now": moved, "amount": message.amount})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consume_batch(event, context, _RECORD, _apply, _ports().options)
