"""One OpenAPI document for the whole public API, generated from every API function's models."""

from __future__ import annotations

import importlib
from typing import Any

API_MODULES = (
    "functions.payment.handler",
    "functions.wallet.handler",
    "functions.ledger.handler",
    "functions.reconciliation.handler",
)


def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Marketplace Payments API",
            "version": "1.0.0",
            "description": "Every request needs x-api-key; every POST needs Idempotency-Key.",
        },
        "paths": {},
        "components": {
            "schemas": {},
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
        },
        "security": [{"apiKey": []}],
    }
    for module_name in API_MODULES:
        schema = (
            importlib.import_module(module_name)
            .app.get_openapi_schema()
            .model_dump(mode="json", by_alias=True, exclude_none=True)
        )
        document["paths"].update(schema.get("paths", {}))
        document["components"]["schemas"].update(schema.get("components", {}).get("schemas", {}))
    return document
