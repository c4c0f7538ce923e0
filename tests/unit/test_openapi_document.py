"""The OpenAPI document, built without a stack: what Powertools cannot say is finished as functions.openapi
says, and the webhook's hand-written body schema is the model the webhook parses."""

from __future__ import annotations

from typing import Any

from functions.common.api_docs import PSP_EVENT_SCHEMA
from functions.openapi import openapi_document
from functions.psp_webhooks.models import PspEvent


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in document["paths"].values() for op in item.values()]


def test_no_operation_keeps_powertools_validation_error_or_extension() -> None:
    document = openapi_document()
    assert "HTTPValidationError" not in str(document)
    for operation in _operations(document):
        assert not [key for key in operation if key.startswith("x-")], operation["operationId"]
        assert list(operation["responses"]) == sorted(operation["responses"])


def test_webhook_body_schema_is_the_psp_event_model() -> None:
    model = PspEvent.model_json_schema()
    assert sorted(PSP_EVENT_SCHEMA["required"]) == sorted(model["required"])
    for name, schema in PSP_EVENT_SCHEMA["properties"].items():
        declared = {k: v for k, v in schema.items() if k not in ("description", "examples")}
        assert declared == {k: v for k, v in model["properties"][name].items() if k != "title"}, name
