"""Adapters of the webhook receiver: its event log (dedupe by event id, kept 30 days) and the signing
secrets (Secrets Manager, read lazily and cached through common.secrets)."""

from __future__ import annotations

import time

from functions.common.dynamo import table
from functions.common.secrets import SecretValue
from functions.psp_webhooks.signatures import secrets_from

EVENT_RETENTION_SECONDS = 30 * 24 * 3600


class DynamoEventLog:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def is_done(self, event_id: str) -> bool:
        item = table(self.table_name).get_item(Key={"event_id": event_id}, ConsistentRead=True).get("Item")
        return item is not None

    def mark_done(self, event_id: str, event_type: str) -> None:
        table(self.table_name).put_item(
            Item={"event_id": event_id, "type": event_type, "expires_at": int(time.time()) + EVENT_RETENTION_SECONDS}
        )


class SecretsManagerSigningSecrets:
    """The signing secrets: one secret whose value is one signing secret or a JSON set of them, read at most
    once per `max_age` seconds whatever the requests carry (forged ones included)."""

    def __init__(self, secret_arn: str, *, max_age: int) -> None:
        self._secret = SecretValue(secret_arn, max_age=max_age)

    def get(self) -> list[str]:
        return secrets_from(self._secret())
