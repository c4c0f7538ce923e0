"""Typed settings read from the environment once per cold start.

CDK builds each function's environment with `lambda_environment`, from the same model the
function reads it with, so the two cannot drift (a test checks every function)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field


class FunctionSettings(BaseModel):
    """Settings every function has: Powertools' own variables."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    service_name: str = Field(alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str = Field(default="Payments", alias="POWERTOOLS_METRICS_NAMESPACE")
    log_level: str = Field(default="INFO", alias="POWERTOOLS_LOG_LEVEL")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        aliases = {field.alias for field in cls.model_fields.values() if field.alias}
        return cls.model_validate({k: v for k, v in env.items() if k in aliases})

    @classmethod
    def env_names(cls) -> set[str]:
        return {field.alias for field in cls.model_fields.values() if field.alias}


def lambda_environment(settings_model: type[FunctionSettings], **values: object) -> dict[str, str]:
    """The environment CDK gives a function: every name its settings model reads."""
    names = {field_name: field.alias or field_name for field_name, field in settings_model.model_fields.items()}
    unknown = set(values) - set(names)
    if unknown:
        raise ValueError(f"{settings_model.__name__} has no settings {sorted(unknown)}")
    missing = {n for n, f in settings_model.model_fields.items() if f.is_required()} - set(values)
    if missing:
        raise ValueError(f"{settings_model.__name__} needs {sorted(missing)}")
    defaults = {n: f.default for n, f in settings_model.model_fields.items() if not f.is_required()}
    merged = {**defaults, **values}
    return {names[k]: str(v) for k, v in merged.items()}
