"""The PSP's event, as it arrives in a webhook body."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.common.errors import InvalidRequest
from functions.common.numbers import JsonInt

# conflict: a verdict that contradicts the one recorded (acknowledged, changes nothing, and alarmed).
Applied = Literal["duplicate", "applied", "ignored", "conflict"]


class PspEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=100)
    created: JsonInt
    data: dict[str, Any]

    @property
    def object(self) -> dict[str, Any]:
        obj = self.data.get("object")
        return obj if isinstance(obj, dict) else {}


def parse_event(body: bytes) -> PspEvent:
    try:
        return PspEvent.model_validate_json(body)
    except ValidationError as error:
        raise InvalidRequest("The body is not a PSP event.", param="body", code="event_invalid") from error
