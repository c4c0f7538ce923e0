"""What every API function shares: the error shape, the request guard, the caller, and Idempotency-Key
handling (scoped per caller: two API keys may use the same Idempotency-Key for different requests)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from functions.common.errors import CallerUnknown, DomainError, IdempotencyKeyReused
from functions.common.observability import logger
from functions.common.pan import find_pan
from functions.common.tenant_store import DynamoTenantDirectory
from functions.common.tenants import DEFAULT_TENANT, KeyTenants, TenantScopedSettings, client_text

MAX_BODY_BYTES = 64 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
MAX_IDEMPOTENCY_KEY_LENGTH = 255

# A POST route's Idempotency-Key: declared in the OpenAPI document and enforced by the resolver's validation.
IdempotencyKey = Annotated[
    str,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        description="Makes the POST safe to retry. Keys are per API key: the same key and body answer the stored "
        "response (with Idempotent-Replayed: true) for 24 hours; the same key with another body answers 422.",
    ),
]


def error_body(error_type: str, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": error_type, "code": code, "message": message}
    if param is not None:
        error["param"] = param
    return {"error": error}


def error_response(status: int, error_type: str, code: str, message: str, param: str | None = None) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(error_type, code, message, param),
    )


def _domain_error(exc: DomainError) -> Response[Any]:
    return error_response(exc.status_code, exc.error_type, exc.code, exc.message, exc.param)


def _param_from_loc(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def build_resolver() -> APIGatewayRestResolver:
    """A resolver whose validation and domain errors all come out in the contract's error shape."""
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[Any]:
        first = exc.errors()[0]
        param = _param_from_loc(tuple(first.get("loc", ())))
        if param.lower() == IDEMPOTENCY_HEADER.lower():
            return _domain_error(IdempotencyKeyInvalid())
        # pydantic's message only, never the input: a rejected field may hold sensitive data.
        return error_response(400, "invalid_request_error", "parameter_invalid", f"{param}: {first.get('msg')}", param)

    @app.exception_handler(DomainError)
    def _domain(exc: DomainError) -> Response[Any]:
        return _domain_error(exc)

    @app.exception_handler(IdempotencyValidationError)
    def _key_reused(_: IdempotencyValidationError) -> Response[Any]:
        return _domain_error(IdempotencyKeyReused(IDEMPOTENCY_HEADER))

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _in_progress(_: IdempotencyAlreadyInProgressError) -> Response[Any]:
        return error_response(
            409,
            "idempotency_error",
            "idempotency_request_in_progress",
            "A request with this Idempotency-Key is still being processed.",
            IDEMPOTENCY_HEADER,
        )

    @app.not_found
    def _not_found(_: Exception) -> Response[Any]:
        return error_response(404, "not_found", "route_not_found", "No such route.")

    return app


def caller_of(app: APIGatewayRestResolver) -> str:
    """Who is calling: the id of the API key the request was made with. API Gateway puts it in the request
    context of every keyed route (locally, the local gateway does the same); without one, nothing is done."""
    caller = app.current_event.request_context.identity.api_key_id
    if not caller:
        raise CallerUnknown()
    return caller


def tenant_of(app: APIGatewayRestResolver) -> str:
    """The caller's tenant: the tenant its API key was registered to (functions/common/tenants.py)."""
    return _tenant_of_key(TenantScopedSettings.from_env().tenants_table, caller_of(app))


def resolve_for_tenant(
    app: APIGatewayRestResolver, event: dict[str, Any], context: Any, *, scoped: bool = True
) -> dict[str, Any]:
    """Resolve a keyed route's request, and answer in the caller's tenant's ids: its records are stored under
    scoped ids (functions/common/tenants.py), its client knows them unscoped. The routes of a service whose
    records are not `scoped` by tenant yet serve the default tenant only: another tenant is refused there,
    before anything is read or written."""
    api_key_id = ((event.get("requestContext") or {}).get("identity") or {}).get("apiKeyId")
    tenant = _tenant_of_key(TenantScopedSettings.from_env().tenants_table, api_key_id) if api_key_id else None
    if not scoped and tenant not in (None, DEFAULT_TENANT):
        return {
            "statusCode": 403,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(
                error_body(
                    "authentication_error",
                    "tenant_not_served",
                    "This route serves the stack's default tenant only; your API key belongs to another.",
                    None,
                )
            ),
        }
    response: dict[str, Any] = app.resolve(event, context)
    if tenant is not None and isinstance(response.get("body"), str):
        response["body"] = client_text(tenant, response["body"])
    return response


KEY_TENANTS = KeyTenants()


def _tenant_of_key(tenants_table: str, api_key_id: str) -> str:
    return KEY_TENANTS.tenant_of(api_key_id, DynamoTenantDirectory(tenants_table))


def guard_request(event: dict[str, Any], *, bank_fields: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """Reject an oversized, non-JSON or card-number-bearing body before any parsing or storage. `bank_fields`
    are the top-level fields of a route that carry bank account numbers, which may look like card numbers.

    Returns an API Gateway proxy response to send instead, or None when the request may proceed."""
    body = event.get("body")
    if not body:
        return None
    size = len(body.encode()) if isinstance(body, str) else len(body)
    if size > MAX_BODY_BYTES:
        return _proxy_error(400, "body_too_large", f"Request body exceeds {MAX_BODY_BYTES} bytes.", "body")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return _proxy_error(400, "body_not_json", "Request body is not valid JSON.", "body")
    if not isinstance(document, dict):  # the resolver would take a one-element list as its object
        return _proxy_error(400, "body_not_object", "Request body must be a JSON object.", "body")
    path = find_pan(document, exempt=bank_fields)
    if path is not None:
        return _proxy_error(
            400, "card_number_detected", "A value looks like a card number; send a PSP token, never card data.", path
        )
    # The body is JSON whatever Content-Type the client sent (curl -d says form-urlencoded).
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    event["headers"] = {**headers, "Content-Type": "application/json"}
    if event.get("multiValueHeaders"):
        event["multiValueHeaders"] = {
            k: v for k, v in event["multiValueHeaders"].items() if k.lower() != "content-type"
        } | {"Content-Type": ["application/json"]}
    return None


def _proxy_error(status: int, code: str, message: str, param: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(error_body("invalid_request_error", code, message, param)),
    }


class Replayed(dict[str, Any]):
    """A response read back from the idempotency store rather than computed now."""


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    return Replayed(response)


class IdempotentOperations:
    """Runs POST operations at most once per (caller, operation, Idempotency-Key), with payload validation."""

    def __init__(self, table_name: str) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath="[caller, operation, idempotency_key]",
            payload_validation_jmespath="body",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
            response_hook=_mark_replayed,
        )
        self._table_name = table_name

    @functools.cached_property
    def _runner(self) -> Callable[..., dict[str, Any]]:
        persistence = DynamoDBPersistenceLayer(table_name=self._table_name)

        @idempotent_function(data_keyword_argument="request", config=self.config, persistence_store=persistence)
        def run(*, request: dict[str, Any], execute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            return execute()

        runner: Callable[..., dict[str, Any]] = run
        return runner

    def run(
        self,
        operation: str,
        caller: str,
        idempotency_key: str | None,
        body: dict[str, Any],
        execute: Callable[[], dict[str, Any]],
    ) -> Response[Any]:
        if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            raise IdempotencyKeyInvalid()
        result = self._runner(
            request={"caller": caller, "operation": operation, "idempotency_key": idempotency_key, "body": body},
            execute=execute,
        )
        headers = {REPLAYED_HEADER: "true"} if isinstance(result, Replayed) else {}
        logger.info("idempotent operation", extra={"operation": operation, "replayed": bool(headers)})
        return Response(
            status_code=HTTPStatus.ACCEPTED,
            content_type=content_types.APPLICATION_JSON,
            body=dict(result),
            headers=headers,
        )


class IdempotencyKeyInvalid(DomainError):
    code = "idempotency_key_missing"

    def __init__(self) -> None:
        super().__init__(
            f"The {IDEMPOTENCY_HEADER} header is required on POST and must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} "
            "characters.",
            param=IDEMPOTENCY_HEADER,
        )
