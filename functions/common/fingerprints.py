"""Fingerprints of request bodies: kept on what a request created, so a later request that maps to it
can be told apart from a retry long after the idempotency record has expired."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def fingerprint(document: Any) -> str:
    """SHA-256 of the document's canonical JSON (sorted keys, no spaces): equal for equal documents."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def without_added_defaults(body: dict[str, Any], added: Mapping[str, Any]) -> dict[str, Any]:
    """The body less each field added to its model later that still has the default it was added with: a
    resource stored before the field existed keeps its fingerprint, and a retry of its request still
    matches. A field set to anything else is part of the request."""
    return {name: value for name, value in body.items() if name not in added or value != added[name]}
