"""Endpoint secrets encrypted with the webhook-secrets KMS key, bound to their endpoint by the encryption
context (a ciphertext copied onto another endpoint's item does not decrypt). Opened secrets are kept in
memory for a few minutes, so a busy endpoint does not cost a KMS call per delivery."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from functions.common.aws import client

CACHE_SECONDS = 300.0


def _context(tenant_id: str, endpoint_id: str) -> dict[str, str]:
    return {"tenant_id": tenant_id, "endpoint_id": endpoint_id}


class KmsSecretSealer:
    def __init__(self, key_arn: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.key_arn = key_arn
        self._clock = clock
        self._opened: dict[tuple[str, str, bytes], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def seal(self, secret: str, *, tenant_id: str, endpoint_id: str) -> bytes:
        response = client("kms").encrypt(
            KeyId=self.key_arn, Plaintext=secret.encode(), EncryptionContext=_context(tenant_id, endpoint_id)
        )
        return bytes(response["CiphertextBlob"])

    def open(self, ciphertext: bytes, *, tenant_id: str, endpoint_id: str) -> str:
        key = (tenant_id, endpoint_id, ciphertext)
        with self._lock:
            cached = self._opened.get(key)
        if cached is not None and self._clock() - cached[0] < CACHE_SECONDS:
            return cached[1]
        response = client("kms").decrypt(
            KeyId=self.key_arn, CiphertextBlob=ciphertext, EncryptionContext=_context(tenant_id, endpoint_id)
        )
        secret = bytes(response["Plaintext"]).decode()
        with self._lock:
            self._opened[key] = (self._clock(), secret)
        return secret

    def __repr__(self) -> str:  # never a secret
        return f"KmsSecretSealer({self.key_arn!r})"
