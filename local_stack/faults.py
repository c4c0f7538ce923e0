"""A seeded fault plan for the local stack (the soak's faults): which batch is delivered how many times,
which invocation's execution environment dies and when, which PSP charge fails or loses its response,
which webhook is dropped, duplicated or held back, and which DynamoDB call a Lambda worker sees
throttled.

Every kind of fault draws from its own random stream, seeded from the plan's seed and the stream's name,
so one seed always yields the same sequence of decisions per stream (the n-th batch, the n-th charge...),
whatever the other streams draw. Which request meets the n-th decision still depends on the order the
concurrent stack happens to serve them in; the plan itself does not."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# The kinds of fault `--faults` names.
KINDS = ("duplicates", "crashes", "psp", "throttling", "webhooks", "interleave")

# How often each fault strikes: low enough that the stack's own retries (five receives before a DLQ, a
# stream's retry attempts) converge, high enough that a soak of 100 checkouts meets every kind many times.
CRASH_RATE = 0.015  # per invocation; half before the handler runs, half after it ran but before it answered
DUPLICATE_RATE = 0.3  # per batch: delivered 2 or 3 times
PSP_ERROR_RATE = 0.05  # per charge request: a 500 before anything is charged
PSP_LOST_RATE = 0.05  # per charge request: charged, but the response is held past the client's timeout
WEBHOOK_DROP_RATE = 0.1  # per charge event (payout events are only duplicated and reordered: see docs)
WEBHOOK_DUPLICATE_RATE = 0.15
WEBHOOK_REORDER_RATE = 0.15
THROTTLE_RATE = 0.005  # per DynamoDB call made by a Lambda worker

# A Lambda worker reads its throttling stream from this variable: {"seed": ..., "rate": ..., "stream": ...}.
THROTTLE_ENV = "PAYMENTS_LOCAL_FAULT_THROTTLE"


def parse_kinds(value: str) -> frozenset[str]:
    """`all`, `none` or a comma-separated list of KINDS."""
    if value == "all":
        return frozenset(KINDS)
    if value == "none":
        return frozenset()
    chosen = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = chosen - set(KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {', '.join(KINDS)}, all or none")
    return chosen


def stream(seed: int, name: str) -> random.Random:
    """The random sequence of one fault stream: the same for the same seed and name, in any build."""
    return random.Random(f"{seed}:{name}")


@dataclass
class FaultPlan:
    seed: int
    kinds: frozenset[str] = frozenset(KINDS)
    injected: Counter[str] = field(default_factory=Counter)
    _streams: dict[str, random.Random] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _draw(self, name: str) -> float:
        with self._lock:
            if name not in self._streams:
                self._streams[name] = stream(self.seed, name)
            return self._streams[name].random()

    def count(self, fault: str, times: int = 1) -> None:
        with self._lock:
            self.injected[fault] += times

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.injected.values())

    def deliveries(self) -> int:
        """How many times the next event-source batch is delivered (1 to 3)."""
        if "duplicates" not in self.kinds:
            return 1
        draw = self._draw("duplicates")
        if draw >= DUPLICATE_RATE:
            return 1
        times = 2 if draw < DUPLICATE_RATE / 2 else 3
        self.count("duplicate_delivery", times - 1)
        return times

    def crash(self, function: str) -> str | None:
        """Whether the next invocation of `function` kills its execution environment: "before" the handler
        runs, "after" it ran (its effects are done, its answer is lost), or None."""
        if "crashes" not in self.kinds:
            return None
        draw = self._draw(f"crashes:{function}")
        if draw >= CRASH_RATE:
            return None
        point = "before" if draw < CRASH_RATE / 2 else "after"
        self.count(f"crash_{point}")
        return point

    def psp_charge(self) -> str | None:
        """For the next charge request: "error" (a 500, nothing charged), "lost" (charged, the response
        never arrives in time) or None."""
        if "psp" not in self.kinds:
            return None
        draw = self._draw("psp")
        if draw < PSP_ERROR_RATE:
            self.count("psp_5xx")
            return "error"
        if draw < PSP_ERROR_RATE + PSP_LOST_RATE:
            self.count("psp_lost_response")
            return "lost"
        return None

    def webhook(self, event_type: str) -> tuple[str | None, float]:
        """For the next webhook event: "drop", "duplicate", "reorder" or None, and the extra delay of a
        reordered one (so that events emitted after it overtake it)."""
        if "webhooks" not in self.kinds:
            return None, 0.0
        draw = self._draw("webhooks")
        delay = self._draw("webhooks:delay") * 3 + 0.5
        droppable = event_type.startswith("charge.")
        if draw < WEBHOOK_DROP_RATE and droppable:
            self.count("webhook_dropped")
            return "drop", 0.0
        draw -= WEBHOOK_DROP_RATE
        if 0 <= draw < WEBHOOK_DUPLICATE_RATE:
            self.count("webhook_duplicated")
            return "duplicate", 0.0
        draw -= WEBHOOK_DUPLICATE_RATE
        if 0 <= draw < WEBHOOK_REORDER_RATE:
            self.count("webhook_reordered")
            return "reorder", delay
        return None, 0.0

    def throttle_env(self, function: str, worker: int) -> dict[str, str]:
        """The environment that makes one Lambda worker throttle its own seeded share of DynamoDB calls."""
        if "throttling" not in self.kinds:
            return {}
        config = {"seed": self.seed, "rate": THROTTLE_RATE, "stream": f"throttling:{function}:{worker}"}
        return {THROTTLE_ENV: json.dumps(config)}

    def schedule(self, name: str, count: int, span: int) -> list[int]:
        """`count` distinct positions out of `span` (e.g. after which checkouts a payout or a settlement
        file is interleaved), sorted."""
        with self._lock:
            chosen = stream(self.seed, f"schedule:{name}").sample(range(span), min(count, span))
        return sorted(chosen)

    def preview(self, draws: int) -> dict[str, list[Any]]:
        """The first `draws` decisions of every stream, from a fresh plan with the same seed and kinds (this
        plan's own streams and counts are left alone): what a seed injects, to compare across builds."""
        fresh = FaultPlan(self.seed, self.kinds)
        return {
            "deliveries": [fresh.deliveries() for _ in range(draws)],
            "crashes": [fresh.crash("Function") for _ in range(draws)],
            "psp": [fresh.psp_charge() for _ in range(draws)],
            "webhooks": [fresh.webhook("charge.succeeded") for _ in range(draws)],
            "throttling": [
                throttle_decisions(json.loads(env), draws) for env in fresh.throttle_env("Function", 0).values()
            ],
            "payouts": fresh.schedule("payouts", 5, 100),
        }


class Throttler:
    """In a Lambda worker: answers a seeded share of DynamoDB calls with the throttling error DynamoDB
    returns once the SDK's own retries are spent (ProvisionedThroughputExceededException)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.rate = float(config["rate"])
        self.draws = stream(int(config["seed"]), str(config["stream"]))
        self.lock = threading.Lock()
        self.throttled = 0  # since the last `take_count`

    def decide(self) -> bool:
        with self.lock:
            throttled = self.draws.random() < self.rate
            self.throttled += int(throttled)
            return throttled

    def take_count(self) -> int:
        with self.lock:
            count, self.throttled = self.throttled, 0
            return count

    def install(self) -> None:
        """Hook every DynamoDB call of the process's default boto3 session (the one the functions' lazily
        created clients use): a throttled call never reaches DynamoDB."""
        import boto3
        from botocore.awsrequest import AWSResponse

        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None

        def before_call(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
            if not self.decide():
                return None
            error = {
                "Code": "ProvisionedThroughputExceededException",
                "Message": "The level of configured provisioned throughput for the table was exceeded "
                "(injected by the local fault plan).",
            }
            response = AWSResponse(url="", status_code=400, headers={}, raw=None)
            return response, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

        boto3.DEFAULT_SESSION.events.register("before-call.dynamodb", before_call)


def throttle_decisions(config: dict[str, Any], draws: int) -> list[bool]:
    throttler = Throttler(config)
    return [throttler.decide() for _ in range(draws)]
