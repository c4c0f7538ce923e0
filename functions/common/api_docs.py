"""What the OpenAPI document says beyond the request and response models: the one error shape, every
status an operation can answer, links from a created resource to its read, and the PSP webhook."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, Field

from functions.common.api import IDEMPOTENCY_HEADER, MAX_BODY_BYTES, REPLAYED_HEADER
from functions.common.money import MAX_AMOUNT_MINOR, TWELVE_DIGIT_AMOUNT_MINOR, TWELVE_DIGIT_CURRENCIES

ErrorType = Literal[
    "invalid_request_error", "idempotency_error", "authentication_error", "not_found", "api_error", "psp_error"
]


class ErrorDetail(BaseModel):
    type: ErrorType
    code: str = Field(description="A stable, machine-readable reason, e.g. parameter_invalid or insufficient_funds.")
    message: str = Field(description="For people; never echoes the rejected value.")
    param: str | None = Field(
        default=None, description="The field path (orders[0].amount), query or path parameter, or header at fault."
    )


class ErrorResponse(BaseModel):
    """Every error the API answers, whether a function, API Gateway or the WAF answers it."""

    error: ErrorDetail


BODY_RULES = (
    f"The body is JSON of at most {MAX_BODY_BYTES // 1024} KB ({MAX_BODY_BYTES} bytes). Any key or value that "
    "looks like a card number (13-19 digits passing the Luhn check) is refused with 400 `card_number_detected`: "
    "send a PSP token, never card data."
)
INVALID = (
    "Invalid request (`invalid_request_error`): `parameter_invalid` names the parameter, header or body field "
    "breaking a rule of this document in `param`."
)
INVALID_BODY = (
    f"{INVALID} An amount above its currency's maximum ({MAX_AMOUNT_MINOR:,} minor units; "
    f"{TWELVE_DIGIT_AMOUNT_MINOR:,} in {', '.join(sorted(TWELVE_DIGIT_CURRENCIES))}) is refused so too, a "
    "rule of the request's currency that the schema's `maximum` (the largest of any currency) cannot state. "
    "Also `body_not_json`, `body_not_object` (JSON that is not an object), "
    f"`body_too_large` (over {MAX_BODY_BYTES} bytes), `card_number_detected`, "
    f"and `idempotency_key_missing` (no {IDEMPOTENCY_HEADER}, or one longer than 255 characters)."
)
FORBIDDEN = "Missing or invalid x-api-key (`authentication_error`, `invalid_api_key`); answered by API Gateway."
TOO_LARGE = f"Body over {MAX_BODY_BYTES} bytes, refused by the WAF before the API (deployed stage only)."
THROTTLED = "Too many requests (`api_error`, `rate_limited` or `quota_exceeded`): the usage plan or the WAF."
IN_PROGRESS = (
    f"`idempotency_request_in_progress` (`idempotency_error`): a request with this {IDEMPOTENCY_HEADER} "
    "is still being processed; retry later."
)
KEY_REUSED = (
    f"`idempotency_key_reused` (`idempotency_error`): this {IDEMPOTENCY_HEADER} was used with a different body."
)


def _error(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorResponse}}}


def read_responses(
    ok: str, *, invalid: str | None = INVALID, not_found: str | None = None
) -> dict[int, OpenAPIResponse]:
    """A GET: the route's return model, or an error (400 only where it takes parameters, 404 only by id)."""
    responses: dict[int, OpenAPIResponse] = {200: {"description": ok}}
    if invalid is not None:
        responses[400] = _error(invalid)
    responses[403] = _error(FORBIDDEN)
    if not_found is not None:
        responses[404] = _error(not_found)
    responses[429] = _error(THROTTLED)
    return responses


def action_responses(ok: str, *, not_found: str, conflict: str) -> dict[int, OpenAPIResponse]:
    """A POST that acts on an existing resource by id, with no body: safe to repeat, so no Idempotency-Key."""
    return read_responses(ok, not_found=not_found) | {409: _error(conflict)}


def create_responses(
    model: type[BaseModel],
    accepted: str,
    *,
    links: dict[str, Any],
    conflict: str = IN_PROGRESS,
    refused: str = KEY_REUSED,
) -> dict[int, OpenAPIResponse]:
    """An idempotent POST: 202 with the created resource (or its replay), links to read it, or an error."""
    return {
        202: {
            "description": accepted,
            "content": {"application/json": {"model": model}},
            "headers": {
                REPLAYED_HEADER: {
                    "description": f"`true` when this is the stored response of an earlier request with the same "
                    f"{IDEMPOTENCY_HEADER}; absent otherwise.",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            },
            "links": links,
        },
        400: _error(INVALID_BODY),
        403: _error(FORBIDDEN),
        409: _error(conflict),
        413: _error(TOO_LARGE),
        422: _error(refused),
        429: _error(THROTTLED),
    }


def replace_responses(ok: str, *, links: dict[str, Any], conflict: str) -> dict[int, OpenAPIResponse]:
    """A PUT that replaces a resource: 200 with the resource as it now is, links to read it, or an error."""
    return {
        200: {"description": ok, "links": links},
        400: _error(INVALID_BODY),
        403: _error(FORBIDDEN),
        409: _error(conflict),
        413: _error(TOO_LARGE),
        429: _error(THROTTLED),
    }


# A route extension naming optional query parameters of which a request must give exactly one; the document
# states it as one form-exploded object parameter (see functions.openapi), which OpenAPI can check.
ONE_QUERY_PARAMETER_OF = "x-one-query-parameter-of"


def link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link: `parameters` map the target's parameters to runtime expressions on this response."""
    return {"operationId": operation_id, "parameters": parameters, "description": description}


# The webhooks are authenticated by their signature, not by x-api-key.
SIGNATURE_PATTERN = r"^t=[0-9]{1,12},v1=[0-9a-f]{64}(,v1=[0-9a-f]{64})*$"


def _event_schema(sender: str, types: str, examples: list[str], data: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "type", "created", "data"],
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": 255, "description": "Deduplicates redeliveries."},
            "type": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "description": f"{types} move state; any other type is acknowledged and ignored.",
                "examples": examples,
            },
            "created": {"type": "integer", "description": f"Unix time the {sender} created the event."},
            "data": {"type": "object", "additionalProperties": True, "description": data},
        },
    }


def _webhook_route(operation_id: str, sender: str, header: str, event_schema: dict[str, Any]) -> dict[str, Any]:
    """A signed webhook route: for the sender, not for marketplaces."""
    return {
        "operation_id": operation_id,
        "description": f"For the {sender}, not for marketplaces. A duplicate event id answers 200 with no effect.",
        "responses": {
            200: {
                "description": "The event was verified and applied, ignored, or a duplicate.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["received", "duplicate"],
                            "properties": {"received": {"type": "boolean"}, "duplicate": {"type": "boolean"}},
                        }
                    }
                },
            },
            400: _error(
                f"`signature_invalid` ({header} missing, malformed, older than 300 s or matching no signing "
                f"secret), or `event_invalid` (the body is not a {sender} event)."
            ),
            413: _error(TOO_LARGE),
            429: _error(THROTTLED),
        },
        "openapi_extensions": {
            "security": [],
            "parameters": [
                {
                    "name": header,
                    "in": "header",
                    "required": True,
                    "description": 't=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>"> with a signing '
                    "secret; several v1 entries are allowed while secrets rotate.",
                    "schema": {"type": "string", "pattern": SIGNATURE_PATTERN},
                }
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": event_schema}}},
        },
    }


PSP_EVENT_SCHEMA = _event_schema(
    "PSP",
    "charge.succeeded, charge.failed, the refund and dispute events",
    ["charge.succeeded", "charge.failed", "refund.succeeded", "charge.dispute.created"],
    "`object.merchant_reference` is our payment order or refund id; `object.id` the PSP's.",
)
PSP_WEBHOOK_ROUTE = _webhook_route("receive_psp_webhook", "PSP", "PSP-Signature", PSP_EVENT_SCHEMA)
PAYOUT_EVENT_SCHEMA = _event_schema(
    "payout provider",
    "payment.paid and payment.failed",
    ["payment.paid", "payment.failed"],
    "The payment: `reference` is our payout id, `id` the provider's payment id.",
)
PAYOUT_WEBHOOK_ROUTE = _webhook_route(
    "receive_payout_provider_webhook", "payout provider", "Payouts-Signature", PAYOUT_EVENT_SCHEMA
)
