"""JSON integers as JSON Schema counts them: 1099 and 1099.0 are the integer 1099; 10.99, "1099" and true are
not integers at all (pydantic's lax mode would coerce the last two)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field


def whole_number(value: Any) -> Any:
    """For a BeforeValidator ahead of a strict int: a float with no fraction becomes that int."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# Bounds, if any, go in the same Field as strict (a second Field after the validator drops them from the schema).
JsonInt = Annotated[int, Field(strict=True), BeforeValidator(whole_number)]
