"""Adapters of the webhook receiver: its event log (dedupe by event id, kept 30 days) and the signing
secrets (Secrets Manager, read lazily and cached through common.secrets)."""

from __future__ import annotations

import time

from functions.common.dynamo import table
from functions.common.secrets import SecretValue
from functions.psp_webhooks.signatures import secrets_from

EVENT_RETENTION_SECONDS = 30 * 24 * 3600


class DynamoEventLog:
    """`key_prefix`: the sender's namespace in a log two senders share (their event ids may collide)."""

    def __init__(self, table_name: str, *, key_prefix: str = "") -> None:
        self.table_name = table_name
        self.key_prefix = key_prefix

    def is_done(self, event_id: str) -> bool:
        key = {"event_id": self.key_prefix + event_id}
        return table(self.table_name).get_item(Key=key, ConsistentRead=True).get("Item") is not None

    def mark_done(self, event_id: str, event_type: str) -> None:
        table(self.table_name).put_item(
            Item={
                "event_id": self.key_prefix + event_id,
                "type": event_type,
                "expires_at": int(time.time()) + EVENT_RETENTION_SECONDS,
            }
        )


class SecretsManagerSigningSecrets:
    """The signing secrets: one secret whose value is one signing secret or a JSON set of them, read at most
    once per `max_age` seconds whatever the requests carry (forged ones included)."""

    def __init__(self, secret_arn: str, *, max_age: int) -> None:
        self._secret = SecretValue(secret_arn, max_age=max_age)

    def get(self) -> list[str]:
        return secrets_from(self._secret())
