"""Secrets from AWS Secrets Manager, read lazily and cached by Powertools parameters.

Nothing is fetched at import or cold start: the first call that needs a secret reads it, later calls
within `max_age` seconds use the cached value, so a rotated value is picked up within minutes without
a redeploy. Secret values never go into the environment, logs or traces."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

DEFAULT_MAX_AGE_SECONDS = 300


class SecretNotSet(Exception):
    """The secret exists but holds no usable value (empty, or binary where text is expected)."""


def get_secret(secret_id: str, *, max_age: int = DEFAULT_MAX_AGE_SECONDS, force_fetch: bool = False) -> str:
    """The secret's current string value (`secret_id`: its ARN or name)."""
    value = parameters.get_secret(secret_id, max_age=max_age, force_fetch=force_fetch)
    if isinstance(value, bytes):
        raise SecretNotSet(f"secret {secret_id} is binary; expected a string")
    if not isinstance(value, str) or not value.strip():
        raise SecretNotSet(f"secret {secret_id} is empty")
    return value.strip()


class SecretValue:
    """A callable that returns the secret's value when called: hand it to adapters as their credential
    provider, so they read (and re-read after `max_age`) only when they actually use it."""

    def __init__(self, secret_id: str, *, max_age: int = DEFAULT_MAX_AGE_SECONDS) -> None:
        self.secret_id = secret_id
        self.max_age = max_age

    def __call__(self) -> str:
        return get_secret(self.secret_id, max_age=self.max_age)

    def __repr__(self) -> str:  # never the value
        return f"SecretValue({self.secret_id!r})"
