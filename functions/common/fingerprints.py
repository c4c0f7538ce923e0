"""Fingerprints of request bodies: kept on what a request created, so a later request that maps to it
can be told apart from a retry long after the idempotency record has expired."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def fingerprint(document: Any) -> str:
    """SHA-256 of the document's canonical JSON (sorted keys, no spaces): equal for equal documents."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
