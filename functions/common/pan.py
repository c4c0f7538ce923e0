"""Card-number (PAN) detection, so a request carrying one is rejected before anything stores it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from stdnum import luhn

# 13-19 digits, optionally grouped by single spaces or dashes, not glued to other digits.
_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def looks_like_pan(text: str) -> bool:
    for match in _CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
            return True
    return False


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, key
            yield from _walk(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value


def find_pan(document: Any, *, exempt: frozenset[str] = frozenset()) -> str | None:
    """The path of the first key or value in `document` that looks like a card number. `exempt` names paths
    whose values are long digit strings by nature (a bank account number, an IBAN) and are validated and
    sealed by their own route."""
    for path, value in _walk(document, ""):
        if isinstance(value, bool) or path in exempt:
            continue
        if isinstance(value, str | int) and looks_like_pan(str(value)):
            return path or "body"
    return None
