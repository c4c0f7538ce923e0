"""PSP webhooks: signed (`PSP-Signature: t=<unix>,v1=<hex hmac-sha256 of "<t>.<raw body>">`), at least
once, in any order. Verified against every currently valid secret (rotation: the old and the new
secret overlap), deduplicated by event id, and applied through conditional transitions only, so a late
or repeated event never moves a decided order or payout."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.common.errors import InvalidRequest
from functions.common.numbers import JsonInt
from functions.common.settings import FunctionSettings
from functions.executor import payouts
from functions.executor.domain import OrderExecution, Publisher, ResolutionStore, resolve_order
from functions.executor.psp import ChargeResult

SIGNATURE_HEADER = "PSP-Signature"
TOLERANCE_SECONDS = 300


class WebhookSettings(FunctionSettings):
    orders_table: str = Field(alias="EXECUTOR_TABLE_NAME")
    payouts_table: str = Field(alias="PAYOUT_EXECUTIONS_TABLE_NAME")
    events_table: str = Field(alias="WEBHOOK_EVENTS_TABLE_NAME")
    secret_arn: str = Field(alias="WEBHOOK_SECRET_ARN")
    wallet_queue_url: str = Field(alias="WALLET_QUEUE_URL")
    order_status_queue_url: str = Field(alias="ORDER_STATUS_QUEUE_URL")
    tolerance_seconds: int = Field(default=TOLERANCE_SECONDS, alias="WEBHOOK_TOLERANCE_SECONDS", gt=0)


class SignatureInvalid(InvalidRequest):
    code = "signature_invalid"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify_signature(
    header: str | None, body: bytes, *, secrets: Sequence[str], now: float, tolerance_seconds: int = TOLERANCE_SECONDS
) -> None:
    """Raise SignatureInvalid unless some v1 signature matches some secret and t is within tolerance."""
    if not header:
        raise SignatureInvalid(f"The {SIGNATURE_HEADER} header is missing.", param=SIGNATURE_HEADER)
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureInvalid(f"The {SIGNATURE_HEADER} header is malformed.", param=SIGNATURE_HEADER)
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureInvalid("The signature's timestamp is outside the tolerance.", param=SIGNATURE_HEADER)
    expected = [sign(secret, timestamp, body) for secret in secrets if secret]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise SignatureInvalid("No signature matches.", param=SIGNATURE_HEADER)


def secrets_from(secret_string: str) -> list[str]:
    """A secret value is one signing secret, or a JSON object/list of them (rotation: old and new)."""
    try:
        parsed = json.loads(secret_string)
    except ValueError:
        return [secret_string]
    if isinstance(parsed, dict):
        return [str(v) for v in parsed.values() if v]
    if isinstance(parsed, list):
        return [str(v) for v in parsed if v]
    return [secret_string]


class PspEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=100)
    created: JsonInt
    data: dict[str, Any]

    @property
    def object(self) -> dict[str, Any]:
        obj = self.data.get("object")
        return obj if isinstance(obj, dict) else {}


def parse_event(body: bytes) -> PspEvent:
    try:
        return PspEvent.model_validate_json(body)
    except ValidationError as error:
        raise InvalidRequest("The body is not a PSP event.", param="body", code="event_invalid") from error


class EventLog(Protocol):
    def is_done(self, event_id: str) -> bool: ...

    def mark_done(self, event_id: str, event_type: str) -> None: ...


class OrderFinder(ResolutionStore, Protocol):
    def find(self, payment_order_id: str) -> OrderExecution | None: ...


Applied = Literal["duplicate", "applied", "ignored"]


def apply_event(
    event: PspEvent,
    *,
    events: EventLog,
    orders: OrderFinder,
    wallet: Publisher,
    order_status: Publisher,
    payout_store: payouts.PayoutExecutionStore,
    answers: payouts.TaskAnswers,
) -> Applied:
    """Apply one verified event. Recorded as done only after its effects, which are idempotent: a crash in
    between means the PSP's retry applies it again, harmlessly."""
    if events.is_done(event.id):
        return "duplicate"
    obj = event.object
    outcome: Applied = "ignored"
    if event.type in ("charge.succeeded", "charge.failed") and obj.get("merchant_reference"):
        execution = orders.find(str(obj["merchant_reference"]))
        if execution is not None:
            result = ChargeResult(
                status="succeeded" if event.type == "charge.succeeded" else "failed",
                psp_reference=obj.get("id"),
                failure_code=obj.get("failure_code"),
            )
            resolve_order(execution, result, store=orders, wallet=wallet, order_status=order_status)
            outcome = "applied"
    elif event.type in ("payout.paid", "payout.failed") and obj.get("merchant_reference"):
        payouts.confirm_payout(
            str(obj["merchant_reference"]),
            "paid" if event.type == "payout.paid" else "failed",
            psp_reference=obj.get("id"),
            failure_code=obj.get("failure_code") or ("payout_failed" if event.type == "payout.failed" else None),
            store=payout_store,
            answers=answers,
        )
        outcome = "applied"
    # Anything else (payout.in_transit, charge.pending, unknown types) is acknowledged and ignored: it
    # cannot move a state forward, and a late one must not move it back.
    events.mark_done(event.id, event.type)
    return outcome


def now() -> float:
    return time.time()


EVENT_RETENTION_SECONDS = 30 * 24 * 3600


class DynamoEventLog:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def is_done(self, event_id: str) -> bool:
        from functions.common.dynamo import table

        item = table(self.table_name).get_item(Key={"event_id": event_id}, ConsistentRead=True).get("Item")
        return item is not None

    def mark_done(self, event_id: str, event_type: str) -> None:
        from functions.common.dynamo import table

        table(self.table_name).put_item(
            Item={"event_id": event_id, "type": event_type, "expires_at": int(now()) + EVENT_RETENTION_SECONDS}
        )


class SecretsManagerSecrets:
    """The signing secrets, cached for a few minutes; refreshed at once when nothing matches (a rotation
    may just have happened)."""

    def __init__(self, secret_arn: str, *, ttl_seconds: float = 300) -> None:
        self.secret_arn = secret_arn
        self.ttl_seconds = ttl_seconds
        self._cached: list[str] = []
        self._fetched_at = 0.0

    def get(self, *, refresh: bool = False) -> list[str]:
        if refresh or not self._cached or now() - self._fetched_at > self.ttl_seconds:
            from functions.common.aws import client

            value = client("secretsmanager").get_secret_value(SecretId=self.secret_arn)["SecretString"]
            self._cached, self._fetched_at = secrets_from(value), now()
        return self._cached


def verify_with_rotation(
    header: str | None, body: bytes, *, secrets: SecretsManagerSecrets, tolerance_seconds: int
) -> None:
    try:
        verify_signature(header, body, secrets=secrets.get(), now=now(), tolerance_seconds=tolerance_seconds)
    except SignatureInvalid:
        verify_signature(
            header, body, secrets=secrets.get(refresh=True), now=now(), tolerance_seconds=tolerance_seconds
        )
