"""EventBridge schedule rules, played locally: one thread fires each rule's Lambda target on its
rate(...) or cron(...) expression with a scheduled-event payload, as EventBridge does. Tests and
operators fire a rule now with `trigger`."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from local_stack.deploy import ScheduleRule
from local_stack.lambda_runtime import InvocationError, LambdaService
from local_stack.template import ACCOUNT_ID, REGION

log = logging.getLogger("local_stack.scheduler")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def next_fire(expression: str, after: datetime) -> datetime | None:
    """When the rule fires next. rate(): every N units; cron(): minute and hour fields (daily/hourly
    rules); anything fancier is left to `trigger`."""
    rate = _RATE.match(expression)
    if rate:
        return after + timedelta(seconds=int(rate.group(1)) * _UNITS[rate.group(2).rstrip("s")])
    cron = re.match(r"^cron\((\S+) (\S+) \S+ \S+ \S+ \S+\)$", expression)
    if cron and cron.group(1).isdigit():
        minute = int(cron.group(1))
        if cron.group(2).isdigit():
            candidate = after.replace(hour=int(cron.group(2)), minute=minute, second=0, microsecond=0)
            return candidate if candidate > after else candidate + timedelta(days=1)
        if cron.group(2) == "*":
            candidate = after.replace(minute=minute, second=0, microsecond=0)
            return candidate if candidate > after else candidate + timedelta(hours=1)
    return None


def scheduled_event(rule: ScheduleRule, when: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [rule.arn],
        "detail": {},
    }


class LocalScheduler(threading.Thread):
    def __init__(self, rules: list[ScheduleRule], *, lambdas: LambdaService, stop: threading.Event) -> None:
        super().__init__(daemon=True, name="eventbridge-scheduler")
        self.rules = rules
        self.lambdas = lambdas
        self.stop_event = stop
        now = datetime.now(UTC)
        self._due = {rule.logical_id: next_fire(rule.expression, now) for rule in rules}

    def rule(self, name: str) -> ScheduleRule:
        """A rule by logical id, physical name, or a unique part of either (e.g. "RecoverySchedule")."""
        matches = [r for r in self.rules if name in (r.logical_id, r.name) or name in r.logical_id]
        if len(matches) != 1:
            raise KeyError(f"{name}: {len(matches)} schedule rules match ({[r.logical_id for r in self.rules]})")
        return matches[0]

    def trigger(self, name: str, *, event: dict[str, Any] | None = None, when: datetime | None = None) -> Any:
        """Fire a rule now and return its function's result. `event` replaces the payload (as a
        target's constant Input does)."""
        rule = self.rule(name)
        payload = event if event is not None else self._payload(rule, when or datetime.now(UTC))
        return self.lambdas.invoke(rule.function, payload)

    @staticmethod
    def _payload(rule: ScheduleRule, when: datetime) -> dict[str, Any]:
        if rule.input is not None:
            parsed: dict[str, Any] = json.loads(rule.input)
            return parsed
        return scheduled_event(rule, when)

    def run(self) -> None:
        while not self.stop_event.wait(1):
            now = datetime.now(UTC)
            for rule in self.rules:
                due = self._due.get(rule.logical_id)
                if due is None or due > now:
                    continue
                self._due[rule.logical_id] = next_fire(rule.expression, now)
                try:
                    self.lambdas.invoke(rule.function, self._payload(rule, due))
                except InvocationError as error:  # EventBridge retries; the next firing comes anyway
                    log.warning("scheduled %s failed: %s", rule.logical_id, error)
