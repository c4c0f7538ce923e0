"""One OpenAPI document for the whole public API, generated from every API function's routes and models,
then finished where Powertools cannot say it: no 422 for validation (this API answers 400), header names
as clients write them, one-of query parameters, and the local stack's health check."""

from __future__ import annotations

import importlib
from typing import Any

from functions.common.api import IDEMPOTENCY_HEADER, MAX_BODY_BYTES
from functions.common.api_docs import ONE_QUERY_PARAMETER_OF

# (module, resolver) of every API function; a test checks that the template's routes are all here.
API_RESOLVERS = (
    ("functions.payment.api", "app"),
    ("functions.payout.api", "app"),
    ("functions.psp_webhooks.handler", "app"),
    ("functions.payout_webhooks.handler", "app"),
    ("functions.wallet.api", "app"),
    ("functions.ledger.api", "app"),
    ("functions.reconciliation.api", "app"),
    ("functions.events.api", "app"),
    ("functions.disputes.api", "app"),
    ("functions.refund.api", "app"),
    ("functions.sellers.handler", "app"),
)
SECURITY_SCHEME = "apiKey"
HEADER_NAMES = {name.lower(): name for name in (IDEMPOTENCY_HEADER,)}
# Powertools' own validation-error schemas: unused here, since validation errors answer 400 in our shape.
POWERTOOLS_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
DESCRIPTION = f"""Marketplace payments: pay-ins split across sellers, wallets, a double-entry ledger, payouts and \
settlement reconciliation.

* Every operation needs the `x-api-key` header, except the PSP's webhook and `/health`.
* Every POST needs an `Idempotency-Key` header (1-255 characters): a retry with the same key and body answers \
the stored response; the same key with another body answers 422.
* Bodies are JSON of at most {MAX_BODY_BYTES // 1024} KB; anything that looks like a card number is refused.
* Every error, whoever answers it, is `{{"error": {{"type", "code", "message", "param"}}}}` (ErrorResponse).
"""
HEALTH_PATH = {
    "get": {
        "operationId": "health",
        "summary": "Liveness of the local stack (served by the local API, not by API Gateway)",
        "security": [],
        "responses": {
            "200": {
                "description": "The local stack is up.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["status"],
                            "properties": {
                                "status": {"type": "string", "enum": ["ok"]},
                                "function_timeouts": {
                                    "type": "object",
                                    "description": "Invocations that ran past their function's timeout, by "
                                    "function (functions without any are left out).",
                                    "additionalProperties": {"type": "integer", "minimum": 1},
                                },
                            },
                        }
                    }
                },
            }
        },
    }
}


def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Marketplace Payments API", "version": "1.0.0", "description": DESCRIPTION},
        "paths": {},
        "components": {
            "schemas": {},
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "The API key printed by `make run` (PAYMENTS_API_KEY); deployed, an API Gateway "
                    "API key. Missing or wrong: 403.",
                }
            },
        },
        "security": [{SECURITY_SCHEME: []}],
    }
    for module_name, resolver in API_RESOLVERS:
        schema = (
            getattr(importlib.import_module(module_name), resolver)
            .get_openapi_schema()
            .model_dump(mode="json", by_alias=True, exclude_none=True)
        )
        document["paths"].update(schema.get("paths", {}))
        document["components"]["schemas"].update(schema.get("components", {}).get("schemas", {}))
    for item in document["paths"].values():
        for operation in item.values():
            _finish_operation(operation)
    for name in POWERTOOLS_VALIDATION_SCHEMAS:
        document["components"]["schemas"].pop(name, None)
    document["paths"]["/health"] = HEALTH_PATH
    return document


def _finish_operation(operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    if "HTTPValidationError" in str(responses.get("422", {})):
        del responses["422"]
    operation["responses"] = dict(sorted(responses.items()))
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header":
            parameter["name"] = HEADER_NAMES.get(parameter["name"].lower(), parameter["name"])
    alternatives = operation.pop(ONE_QUERY_PARAMETER_OF, None)
    if alternatives:
        _one_query_parameter_of(operation, alternatives)


def _one_query_parameter_of(operation: dict[str, Any], names: list[str]) -> None:
    """Optional query parameters of which exactly one must be given, as one form-exploded object parameter:
    `?payment_order_id=po_1` is the object {"payment_order_id": "po_1"}. Other query parameters are ignored."""
    chosen = [p for p in operation["parameters"] if p["in"] == "query" and p["name"] in names]
    properties = {p["name"]: _without_null(p["schema"]) for p in chosen}
    operation["parameters"] = [p for p in operation["parameters"] if p not in chosen]
    operation["parameters"].append(
        {
            "name": "filter",
            "in": "query",
            "required": True,
            "style": "form",
            "explode": True,
            "description": f"Exactly one of: {', '.join(names)}.",
            "schema": {
                "type": "object",
                "properties": properties,
                "oneOf": [{"required": [name]} for name in names],
            },
        }
    )


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema (anyOf [X, null]) as X: a query parameter is absent, never null."""
    branches: list[dict[str, Any]] = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    (present,) = branches
    return present
