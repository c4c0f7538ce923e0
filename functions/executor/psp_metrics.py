"""The PSP as the executor charges it: the same calls, with charge latency and declines published as the
executor's metrics (the dashboard's PSP latency and decline rate)."""

from __future__ import annotations

import time

from aws_lambda_powertools.metrics import MetricUnit

from functions.common.observability import METRICS_LOCK, metrics
from functions.executor.domain import Psp
from functions.psp.models import ChargeResult


class MeteredPsp:
    def __init__(self, psp: Psp) -> None:
        self._psp = psp

    def charge(
        self, *, idempotency_key: str, amount: int, currency: str, payment_method: str, merchant_reference: str
    ) -> ChargeResult:
        started = time.perf_counter()
        result = self._psp.charge(
            idempotency_key=idempotency_key,
            amount=amount,
            currency=currency,
            payment_method=payment_method,
            merchant_reference=merchant_reference,
        )
        latency_ms = (time.perf_counter() - started) * 1000
        with METRICS_LOCK:  # orders are charged on threads; Powertools' metric set is a plain dict
            metrics.add_metric(name="PspChargeLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
            if result.status == "failed":
                metrics.add_metric(name="ChargesDeclined", unit=MetricUnit.Count, value=1)
        return result

    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None:
        return self._psp.charge_by_idempotency_key(idempotency_key)
