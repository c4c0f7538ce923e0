"""A Lambda handler for the local runtime's own tests: sleeps as long as the event says, and answers with
the time its context says was left when it started."""

from __future__ import annotations

import time
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    remaining_ms = context.get_remaining_time_in_millis()
    time.sleep(float(event.get("sleep", 0)))
    return {"remaining_ms_at_start": remaining_ms}
