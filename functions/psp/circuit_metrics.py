"""The PSP circuit as metrics and logs: `PspCircuitOpen` (1 while open or half-open, else 0; an alarm
watches its maximum), `PspCallsRejected` (calls failed fast) and `PspCircuitSyncFailed`."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from functions.common.observability import METRICS_LOCK, logger, metrics
from functions.psp.circuit import CircuitPolicy, CircuitState, effective_status


class CircuitMetrics:
    def __init__(self, name: str, policy: CircuitPolicy) -> None:
        self.name = name
        self.policy = policy
        self._last_status: str | None = None

    def synced(self, state: CircuitState, *, now: float) -> None:
        status = effective_status(state, now=now, policy=self.policy)
        with METRICS_LOCK:
            metrics.add_metric(name="PspCircuitOpen", unit=MetricUnit.Count, value=0 if status == "closed" else 1)
        if status != self._last_status:
            logger.info("PSP circuit state", extra={"circuit": self.name, "circuit_status": status})
            self._last_status = status

    def rejected(self) -> None:
        with METRICS_LOCK:
            metrics.add_metric(name="PspCallsRejected", unit=MetricUnit.Count, value=1)

    def sync_failed(self, error: Exception) -> None:
        logger.warning("PSP circuit state not shared; going on with the local view", extra={"error": str(error)})
        with METRICS_LOCK:
            metrics.add_metric(name="PspCircuitSyncFailed", unit=MetricUnit.Count, value=1)
