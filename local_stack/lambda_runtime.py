"""Local Lambda service: a pool of worker processes per function, each with the function's own
environment from the template, scaled out on demand up to the function's concurrency.

The template's timeout is enforced as Lambda enforces it: an invocation still running at its timeout is
a timeout (its execution environment is killed, the event source treats the batch as failed), and so is
one that answered only after it; every timeout is counted per function (`LambdaService.timeouts`, shown on
the local API's /health)."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import IO, Any

from local_stack.chaos import Chaos
from local_stack.deploy import FunctionSpec
from local_stack.loopback import stop_process
from local_stack.metering import Meter

DEFAULT_MAX_CONCURRENCY = 4
# An invocation waits this long for a cold start, then fails. The worker goes on starting and serves the
# next invocation: on an overloaded machine, killing slow starts and beginning new ones never converged
# (every start thrown away had burnt its CPU for nothing). One still not ready after STARTING_LIMIT_SECONDS
# is stopped (an import that hangs).
COLD_START_SECONDS = 60
STARTING_LIMIT_SECONDS = 600
log = logging.getLogger("local_stack.lambda_runtime")
# How long past a function's timeout the runtime waits for the reply of a worker before killing it: the
# time a reply written at the deadline needs to cross the pipe. Any reply later than the timeout itself
# still counts as a timeout.
REPLY_GRACE_SECONDS = 0.5


class InvocationError(Exception):
    """The function raised, timed out or its process died: Lambda's 'function error'."""


def die_with_parent() -> None:
    # Linux: the child gets SIGTERM when the thread that started it ends (use from the main thread).
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Worker:
    process: subprocess.Popen[str]
    replies: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)

    def start_reader(self) -> None:
        def read(stream: IO[str]) -> None:
            for line in stream:
                self.replies.put(json.loads(line))
            self.replies.put(None)  # the process ended

        threading.Thread(target=read, args=(self.process.stdout,), daemon=True).start()

    def stop(self) -> None:
        stop_process(self.process, grace_seconds=5)


class FunctionPool:
    def __init__(
        self,
        spec: FunctionSpec,
        *,
        base_env: dict[str, str],
        log: IO[str] | None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        chaos: Chaos | None = None,
    ) -> None:
        self.spec = spec
        self.chaos = chaos or Chaos()
        self._spawned = 0
        self.env = {
            **base_env,
            **spec.environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "LOCAL_LAMBDA_TIMEOUT": str(spec.timeout_seconds),
        }
        self.log = log
        self.max_concurrency = min(max_concurrency, spec.reserved_concurrency or max_concurrency)
        self._idle: list[Worker] = []
        self._all: list[Worker] = []
        self._starting = 0  # starts in progress: one at a time
        self._adopting: list[Worker] = []  # slow starts an invocation gave up on, still starting
        self._lock = threading.Condition()
        self._closed = False
        self.timeouts = 0

    def _start_process(self) -> Worker:
        with self._lock:
            number, self._spawned = self._spawned, self._spawned + 1
        plan = self.chaos.plan
        faults = plan.throttle_env(self.spec.logical_id, number) if plan is not None else {}
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "local_stack.lambda_worker", self.spec.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log or None,
            text=True,
            # No parent-death signal here (it fires when the spawning *thread* ends); a worker whose
            # parent dies sees stdin close and exits on its own.
            env={**self.env, **faults},
        )
        worker = Worker(process)
        worker.start_reader()
        return worker

    def _spawn(self) -> Worker:
        """A ready worker, counted in `_all`. The caller has reserved its slot (`_starting`): a start in
        progress counts against the function's concurrency, as a running worker does."""
        worker = self._start_process()
        try:
            ready = worker.replies.get(timeout=COLD_START_SECONDS)
        except queue.Empty:
            with self._lock:
                self._adopting.append(worker)
            threading.Thread(target=self._adopt, args=(worker,), daemon=True, name=f"adopt-{self.spec.name}").start()
            raise InvocationError(
                f"{self.spec.handler} did not start within {COLD_START_SECONDS}s (it goes on starting)"
            ) from None
        if not ready or not ready.get("ready"):
            self._end_start(None)
            worker.stop()
            raise InvocationError(f"{self.spec.handler} failed to start (import error?)")
        self._end_start(worker)
        return worker

    def _adopt(self, worker: Worker) -> None:
        """Wait for a slow cold start; once ready, the worker joins the idle pool."""
        try:
            ready = worker.replies.get(timeout=STARTING_LIMIT_SECONDS - COLD_START_SECONDS)
        except queue.Empty:
            ready = None
        with self._lock:
            self._adopting.remove(worker)
            adopted = bool(ready and ready.get("ready")) and not self._closed
        if not adopted:
            if not self._closed:
                log.warning("%s: a slow-starting worker never became ready; stopped", self.spec.name)
            self._end_start(None)
            worker.stop()
            return
        with self._lock:  # in one step: a caller woken in between would start another worker
            self._starting -= 1
            self._all.append(worker)
            self._idle.append(worker)
            self._lock.notify()

    def _end_start(self, worker: Worker | None) -> None:
        """A start is over: its slot goes to the worker it made, or back to the pool."""
        with self._lock:
            self._starting -= 1
            if worker is not None:
                self._all.append(worker)
            self._lock.notify()

    def warm(self) -> None:
        with self._lock:
            self._starting += 1
        try:
            worker = self._spawn()
        except InvocationError as error:  # the pool starts one on demand instead
            log.warning("warming %s failed: %s", self.spec.name, error)
            return
        with self._lock:
            self._idle.append(worker)
            self._lock.notify()

    def _acquire(self) -> Worker:
        with self._lock:
            while True:
                if self._closed:
                    raise InvocationError("the local Lambda service is stopping")
                if self._idle:
                    return self._idle.pop()
                # One start at a time: on a shared two-core machine, starts in parallel only slow each
                # other down, and a start in progress soon frees a worker for the callers waiting here.
                if self._starting == 0 and len(self._all) < self.max_concurrency:
                    self._starting += 1
                    break
                self._lock.wait(timeout=1)
        return self._spawn()

    def _release(self, worker: Worker, healthy: bool) -> None:
        with self._lock:
            if healthy and not self._closed:
                self._idle.append(worker)
            else:
                self._all.remove(worker)
            self._lock.notify()
        if not healthy:
            worker.stop()

    def invoke(self, event: dict[str, Any], *, crash: bool | str | None = None) -> Any:
        """`crash`: kill the execution environment "before" the handler runs (True means the same) or
        "after" it ran, before it answers (fault injection)."""
        worker = self._acquire()
        healthy = False
        timeout = self.spec.timeout_seconds
        try:
            assert worker.process.stdin is not None
            started = time.monotonic()
            request = {
                "event": event,
                "request_id": str(uuid.uuid4()),
                "crash": "before" if crash is True else (crash or None),
                # The context's deadline, on the wall clock both processes share.
                "deadline": time.time() + timeout,
            }
            worker.process.stdin.write(json.dumps(request) + "\n")
            worker.process.stdin.flush()
            try:
                reply = worker.replies.get(timeout=timeout + REPLY_GRACE_SECONDS)
            except queue.Empty:
                raise self._timed_out() from None
            if reply is None:
                raise InvocationError(f"{self.spec.name}: the execution environment died")
            if time.monotonic() - started > timeout:
                raise self._timed_out()  # answered, but after Lambda would have stopped it
            healthy = True
            if reply.get("throttled") and self.chaos.plan is not None:
                self.chaos.plan.count("dynamodb_throttle", int(reply["throttled"]))
            if "error" in reply:
                raise InvocationError(f"{reply['error']['errorType']}: {reply['error']['errorMessage']}")
            return reply["result"]
        except (BrokenPipeError, OSError) as error:
            raise InvocationError(f"{self.spec.name}: {error}") from error
        finally:
            self._release(worker, healthy)

    def _timed_out(self) -> InvocationError:
        with self._lock:
            self.timeouts += 1
        return InvocationError(f"{self.spec.name} timed out after {self.spec.timeout_seconds}s")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = [*self._all, *self._adopting]
            self._lock.notify_all()
        for worker in workers:
            worker.stop()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._all]


class LambdaService:
    def __init__(
        self,
        functions: dict[str, FunctionSpec],
        *,
        base_env: dict[str, str],
        log: IO[str] | None,
        chaos: Chaos | None = None,
        meter: Meter | None = None,
    ) -> None:
        self.chaos = chaos or Chaos()
        self.pools = {
            logical_id: FunctionPool(spec, base_env=base_env, log=log, chaos=self.chaos)
            for logical_id, spec in functions.items()
        }
        self.meter = meter

    def warm_all(self) -> None:
        threads = [threading.Thread(target=pool.warm) for pool in self.pools.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return self.pools[logical_id].invoke(event, crash=self.chaos.crash_point(logical_id))
        finally:
            if self.meter is not None:
                self.meter.record_invocation(logical_id, (time.perf_counter() - started) * 1000)

    def timeouts(self) -> dict[str, int]:
        """Invocations that ran past their timeout, by function name (functions without any left out)."""
        return {pool.spec.name: pool.timeouts for pool in self.pools.values() if pool.timeouts}

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


def worker_base_env(aws_endpoint: str) -> dict[str, str]:
    """What every local function sees besides its own variables: the local cloud, fake credentials."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "TZ")}
    return {
        **keep,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
