"""One local Lambda execution environment: imports a handler once (cold start), then runs one
invocation at a time. Requests arrive as JSON lines on stdin; results leave on the original stdout,
while everything the handler prints (logs, metrics) goes to stderr."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any

from local_stack.faults import THROTTLE_ENV, Throttler
from local_stack.metering import CALL_LOG_ENV, WorkerMeter


class LocalContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    def __init__(
        self,
        *,
        function_name: str,
        memory_mb: int,
        timeout_seconds: int,
        request_id: str,
        deadline: float | None = None,
    ) -> None:
        """`deadline`: when the invocation times out, in Unix seconds (default: `timeout_seconds` from now)."""
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = deadline if deadline is not None else time.time() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def main() -> None:
    handler_path = sys.argv[1]
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # handler output must never corrupt the reply channel
    sys.stdout = sys.stderr
    meter: WorkerMeter | None = None
    if os.environ.get(CALL_LOG_ENV):
        meter = WorkerMeter(
            os.environ[CALL_LOG_ENV],
            os.environ.get("AWS_LAMBDA_FUNCTION_NAME", handler_path),
            os.environ.get("AWS_ENDPOINT_URL"),
        )
        meter.install()
    throttler = Throttler(json.loads(os.environ[THROTTLE_ENV])) if os.environ.get(THROTTLE_ENV) else None
    if throttler is not None:
        throttler.install()
    module_name, _, attribute = handler_path.rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", handler_path)
    memory_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
    timeout_seconds = int(os.environ.get("LOCAL_LAMBDA_TIMEOUT", "3"))
    replies.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("crash") == "before":
            os._exit(137)  # fault injection: the execution environment dies as the invocation starts
        context = LocalContext(
            function_name=function_name,
            memory_mb=memory_mb,
            timeout_seconds=timeout_seconds,
            request_id=request.get("request_id") or str(uuid.uuid4()),
            deadline=request.get("deadline"),
        )
        reply: dict[str, Any]
        if meter is not None:
            meter.begin_invocation()
        try:
            reply = {"result": handler(request["event"], context)}
        except Exception as error:  # noqa: BLE001 - reported to the caller as Lambda reports a function error
            reply = {
                "error": {
                    "errorType": type(error).__name__,
                    "errorMessage": str(error),
                    "stackTrace": traceback.format_exc().splitlines(),
                }
            }
        if meter is not None:
            meter.end_invocation()
        if request.get("crash") == "after":
            os._exit(137)  # fault injection: the handler's effects are done, its answer never arrives
        if throttler is not None:
            reply["throttled"] = throttler.take_count()
        replies.write(json.dumps(reply, default=str) + "\n")


if __name__ == "__main__":
    main()
