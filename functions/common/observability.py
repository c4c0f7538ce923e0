"""Powertools Logger, Tracer and Metrics: one of each per function process.

Each reads its service name and namespace from the function's environment
(POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE), which CDK sets from the settings model."""

from __future__ import annotations

import threading

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# Powertools' metric set is a plain dict: code that adds metrics from record threads holds this lock.
METRICS_LOCK = threading.Lock()


def correlate(payment_id: str, **keys: str) -> None:
    """Every log line of this unit of work carries the payment id as its correlation id."""
    logger.set_correlation_id(payment_id)
    logger.append_keys(payment_id=payment_id, **keys)
