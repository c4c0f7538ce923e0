"""Field-level encryption with a KMS key of its own: a secret (a webhook endpoint's signing secret, a
seller's bank account numbers) sealed under the key and bound to its owner by the encryption context, so a
ciphertext copied onto another item does not decrypt. Opened values are kept in memory for a few minutes,
so a busy endpoint does not cost a KMS call per delivery."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from functions.common.aws import client

CACHE_SECONDS = 300.0


class KmsSecretSealer:
    def __init__(
        self, key_arn: str, *, cache_seconds: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.key_arn = key_arn
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._opened: dict[tuple[tuple[tuple[str, str], ...], bytes], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def seal(self, secret: str, **owner: str) -> bytes:
        """Encrypt `secret` for its owner (the encryption context, e.g. tenant_id and endpoint_id)."""
        response = client("kms").encrypt(KeyId=self.key_arn, Plaintext=secret.encode(), EncryptionContext=owner)
        return bytes(response["CiphertextBlob"])

    def open(self, ciphertext: bytes, **owner: str) -> str:
        key = (tuple(sorted(owner.items())), ciphertext)
        with self._lock:
            cached = self._opened.get(key)
        if cached is not None and self._clock() - cached[0] < self.cache_seconds:
            return cached[1]
        response = client("kms").decrypt(KeyId=self.key_arn, CiphertextBlob=ciphertext, EncryptionContext=owner)
        secret = bytes(response["Plaintext"]).decode()
        if self.cache_seconds > 0:
            with self._lock:
                now = self._clock()
                # Expired entries go as new ones come, so an opened secret outlives its minutes nowhere.
                self._opened = {k: v for k, v in self._opened.items() if now - v[0] < self.cache_seconds}
                self._opened[key] = (now, secret)
        return secret

    def __repr__(self) -> str:  # never a secret
        return f"KmsSecretSealer({self.key_arn!r})"
