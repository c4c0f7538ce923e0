"""A Lambda handler for the local runtime's own tests whose cold start is slow (its import sleeps for
SLOW_START_SECONDS, as a heavy import does on a loaded machine), and which answers with its process id."""

from __future__ import annotations

import os
import time
from typing import Any

time.sleep(float(os.environ.get("SLOW_START_SECONDS", "0")))


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return {"pid": os.getpid()}
