"""moto's SQS backend without a cost per message waiting in the queue on every send and receive.

moto (5.2.x) computes a queue's whole attribute set, with its three approximate message counts (each a
pass over every message in the queue), whenever it reads one attribute. A send reads one (content-based
deduplication), and a receive reads one for each message it returns (the retention period), three times
over. With a backlog of n messages, each send costs O(n) and each receive of 10 messages O(90 n): a soak
of 1,000 checkouts, which queues thousands of messages in minutes, spent most of the local cloud's CPU
counting messages, and credited about 15 orders a minute.

Those two reads never look at the counts, so while they run the counts are not computed (they read 0).
Anything that asks for the counts (GetQueueAttributes, from its own request) still gets them exactly."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.sqs.models import Queue, SQSBackend

COUNT_PROPERTIES = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)
# The backend methods that read one attribute other than the counts, per message sent or received.
READS_WITHOUT_COUNTS = ("send_message", "is_message_valid_based_on_retention_period")

_reading = threading.local()  # moto's server serves each request on its own thread


def _counts_skipped() -> bool:
    return getattr(_reading, "without_counts", False)


def _without_counts(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        outer = _counts_skipped()
        _reading.without_counts = True
        try:
            return method(*args, **kwargs)
        finally:
            _reading.without_counts = outer

    return call


def _count_unless_skipped(count: property) -> property:
    getter = count.fget
    assert getter is not None

    @functools.wraps(getter)
    def get(queue: Queue) -> int:
        return 0 if _counts_skipped() else getter(queue)

    return property(get)


def skip_message_counts_on_sends_and_receives() -> None:
    if getattr(SQSBackend.send_message, "__wrapped__", None) is not None:
        return  # already done in this process
    for name in COUNT_PROPERTIES:
        setattr(Queue, name, _count_unless_skipped(getattr(Queue, name)))
    for name in READS_WITHOUT_COUNTS:
        setattr(SQSBackend, name, _without_counts(getattr(SQSBackend, name)))
