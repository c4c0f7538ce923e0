"""One OpenAPI document for the whole public API, generated from every API function's models."""

from __future__ import annotations

import importlib
from typing import Any

# (module, resolver) of every API function; a test checks that the template's routes are all here.
API_RESOLVERS = (
    ("functions.payment.handler", "app"),
    ("functions.payout.handler", "app"),
    ("functions.psp_webhooks.handler", "app"),
    ("functions.wallet.handler", "app"),
    ("functions.ledger.handler", "app"),
    ("functions.reconciliation.handler", "app"),
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
    for module_name, resolver in API_RESOLVERS:
        schema = (
            getattr(importlib.import_module(module_name), resolver)
            .get_openapi_schema()
            .model_dump(mode="json", by_alias=True, exclude_none=True)
        )
        document["paths"].update(schema.get("paths", {}))
        document["components"]["schemas"].update(schema.get("components", {}).get("schemas", {}))
    return document
