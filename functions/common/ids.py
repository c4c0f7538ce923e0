"""Identifier formats and generators."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated

from pydantic import Field

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ExternalId = Annotated[str, Field(pattern=ID_PATTERN)]


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def deterministic_id(prefix: str, *parts: str) -> str:
    """An id derived only from business ids, so a retried write targets the same item."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"{prefix}_{digest}"
