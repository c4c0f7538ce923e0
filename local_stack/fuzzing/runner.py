"""Sends the generated requests over loopback HTTP in chunks, and proves that the ones which must change
nothing changed nothing.

Each chunk is sent in two phases. First its valid requests (`write`), which may change state; then, once
the stack has settled (no message in flight, two equal digests), the rest (`read` and `reject`) between
two digests of every table, queue, execution and object. A difference is bisected by sending halves of
the phase again, down to the request that writes; if no request writes when re-sent, the difference was
background work and is reported as such, not blamed on a request."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import urllib3

from local_stack.fuzzing.generator import RequestGenerator
from local_stack.fuzzing.requests import FuzzRequest, Outcome, Signer
from local_stack.fuzzing.state import StackResources, StateProbe, changes
from local_stack.stack import aws_clients

log = logging.getLogger("local_stack.fuzz")
CHUNK = 250
CONCURRENCY = 4  # requests in flight at once within a phase (the local API serves each on its own thread)
SETTLE_TIMEOUT_SECONDS = 90.0


@dataclass(frozen=True)
class FuzzTarget:
    api_url: str
    api_key: str
    webhook_secret: str
    payout_webhook_secret: str
    aws_endpoint: str
    resources: StackResources


@dataclass
class FuzzReport:
    seed: int
    outcomes: list[Outcome] = field(default_factory=list)
    verified_no_write: int = 0  # 4xx answers sent in a no-write phase whose digest did not change
    write_violations: list[str] = field(default_factory=list)  # a read/reject request that changed state
    background_changes: list[str] = field(default_factory=list)
    unsettled_chunks: int = 0
    seconds: float = 0.0

    @property
    def server_errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.server_error]

    @property
    def unexpected(self) -> list[Outcome]:
        """Answers other than the request expected: a valid request refused, an invalid one accepted."""
        return [o for o in self.outcomes if not o.server_error and not o.matches_expectation]

    @property
    def rejected(self) -> int:
        return sum(1 for o in self.outcomes if 400 <= o.status < 500)

    @property
    def accepted(self) -> int:
        return sum(1 for o in self.outcomes if 200 <= o.status < 300)

    @property
    def ok(self) -> bool:
        return not self.server_errors and not self.write_violations and not self.unexpected

    def line(self) -> str:
        return (
            f"fuzz: {len(self.outcomes)} requests, {len(self.server_errors)} 5xx, {self.rejected} rejected (4xx), "
            f"{self.accepted} accepted, {self.verified_no_write} rejected-wrote-nothing, {self.seconds:.0f} s"
        )

    def problems(self) -> list[str]:
        found = [f"5xx: {o.request.label()} -> {o.status} {o.body[:200]!r}" for o in self.server_errors]
        found += [f"wrote: {v}" for v in self.write_violations]
        found += [
            f"unexpected: {o.request.label()} expected {o.request.expect}, got {o.status} {o.body[:200]!r}"
            for o in self.unexpected
        ]
        return found


class Sender:
    def __init__(self, target: FuzzTarget) -> None:
        self.target = target
        self.http = urllib3.PoolManager(maxsize=CONCURRENCY, timeout=urllib3.Timeout(connect=5, read=60), retries=False)

    def send(self, request: FuzzRequest) -> Outcome:
        secrets: dict[Signer, str] = {
            "psp": self.target.webhook_secret,
            "payout_provider": self.target.payout_webhook_secret,
        }
        headers = request.headers_to_send(self.target.api_key, secrets)
        try:
            response = self.http.request(
                request.method,
                f"{self.target.api_url}{request.path}",
                body=request.body,
                headers=headers,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as error:  # no answer at all counts as a server failure
            return Outcome(request, 0, f"no response: {error}".encode())
        return Outcome(request, response.status, response.data)

    def send_all(self, requests: Sequence[FuzzRequest]) -> list[Outcome]:
        with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="fuzz") as pool:
            return list(pool.map(self.send, requests))


def operations_of(document: dict[str, object]) -> set[str]:
    paths = document.get("paths")
    assert isinstance(paths, dict)
    return {f"{method.upper()} {path}" for path, item in paths.items() for method in item}


class FuzzRun:
    def __init__(
        self, target: FuzzTarget, *, chunk: int = CHUNK, settle_timeout: float = SETTLE_TIMEOUT_SECONDS
    ) -> None:
        self.target = target
        self.sender = Sender(target)
        self.probe = StateProbe(target.resources, aws_clients(target.aws_endpoint))
        self.chunk = chunk
        self.settle_timeout = settle_timeout

    def document_operations(self) -> set[str]:
        response = self.sender.http.request("GET", f"{self.target.api_url}/openapi.json")
        return operations_of(json.loads(response.data))

    def run(self, *, requests: int, seed: int) -> FuzzReport:
        started = time.monotonic()
        generator = RequestGenerator(seed)
        uncovered = self.document_operations() - generator.operations()
        if uncovered:
            raise ValueError(f"the fuzzer has no requests for {sorted(uncovered)}: add them to its generator")
        report = FuzzReport(seed=seed)
        generated = generator.generate(requests)
        for start in range(0, len(generated), self.chunk):
            self._chunk(generated[start : start + self.chunk], report)
            log.info(
                "%d/%d requests sent, %d 5xx",
                min(start + self.chunk, len(generated)),
                len(generated),
                len(report.server_errors),
            )
        report.outcomes.sort(key=lambda o: o.request.index)
        report.seconds = time.monotonic() - started
        return report

    def _chunk(self, requests: list[FuzzRequest], report: FuzzReport) -> None:
        writes = [r for r in requests if r.expect == "write"]
        no_writes = [r for r in requests if r.expect != "write"]
        clock = time.monotonic()
        report.outcomes += self.sender.send_all(writes)
        sent = time.monotonic()
        before, settled = self.probe.settled(timeout=self.settle_timeout)
        if not settled:
            report.unsettled_chunks += 1
        quiet = time.monotonic()
        outcomes = self.sender.send_all(no_writes)
        report.outcomes += outcomes
        checked = time.monotonic()
        after = self.probe.digest()
        log.debug(
            "chunk: %d writes in %.1fs, settled in %.1fs, %d others in %.1fs, digest %.1fs",
            len(writes),
            sent - clock,
            quiet - sent,
            len(no_writes),
            checked - quiet,
            time.monotonic() - checked,
        )
        culprits: set[int] = set()
        if before != after:
            culprits = self._attribute(no_writes, outcomes, changes(before, after), report)
        report.verified_no_write += sum(
            1 for o in outcomes if 400 <= o.status < 500 and o.request.index not in culprits
        )

    def _attribute(
        self, requests: list[FuzzRequest], outcomes: list[Outcome], changed: list[str], report: FuzzReport
    ) -> set[int]:
        """Bisect the phase (sending its requests again) down to the requests that write. A request that
        writes only once (it was accepted, and is replayed when sent again) is named by its 2xx answer."""
        culprits: set[int] = set()
        self.probe.settled(timeout=self.settle_timeout)
        pending: list[Sequence[FuzzRequest]] = [requests]
        while pending:
            part = pending.pop()
            before = self.probe.digest()
            for request in part:
                self.sender.send(request)
            after = self.probe.digest()
            if before == after:
                continue
            if len(part) == 1:
                culprits.add(part[0].index)
                report.write_violations.append(f"{part[0].label()}: {'; '.join(changes(before, after))}")
                continue
            self.probe.settled(timeout=self.settle_timeout)
            middle = len(part) // 2
            pending += [part[middle:], part[:middle]]
        if not culprits:
            for outcome in outcomes:
                if outcome.request.expect == "reject" and 200 <= outcome.status < 300:
                    culprits.add(outcome.request.index)
                    report.write_violations.append(
                        f"{outcome.request.label()} (answered {outcome.status}): {'; '.join(changed)}"
                    )
        if not culprits:
            report.background_changes.append(
                f"requests #{requests[0].index}-#{requests[-1].index}: {'; '.join(changed)} "
                "(no request of the phase writes when sent again)"
            )
        return culprits
