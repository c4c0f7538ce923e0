"""Test doubles for the ports the executor and the recovery sweep publish and look up through."""

from __future__ import annotations

from pydantic import BaseModel

from functions.psp.models import ChargeResult, PspUnavailable


class Recorder:
    """A publisher that keeps what it was given."""

    def __init__(self) -> None:
        self.messages: list[BaseModel] = []

    def publish(self, message: BaseModel) -> None:
        self.messages.append(message)


class ProcessDied(BaseException):
    """The process ends here (a timeout, an out-of-memory kill): nothing after it runs."""


class DyingPublisher:
    def publish(self, message: BaseModel) -> None:
        raise ProcessDied


class ChargeLookups:
    """The PSP's charge lookup by idempotency key: known charges, and keys whose lookup fails (a 503)."""

    def __init__(self, known: dict[str, ChargeResult], broken: frozenset[str] = frozenset()) -> None:
        self.known = known
        self.broken = broken
        self.asked: list[str] = []

    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None:
        self.asked.append(idempotency_key)
        if idempotency_key in self.broken:
            raise PspUnavailable("PSP answered 503 to a charge lookup")
        return self.known.get(idempotency_key)
