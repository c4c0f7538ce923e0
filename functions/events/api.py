"""Events API entry point: webhook endpoints (register, list, remove) and the event list."""

from __future__ import annotations

import functools
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.api import (
    REPLAYED_HEADER,
    IdempotencyKey,
    build_resolver,
    caller_of,
    guard_request,
    resolve_for_tenant,
    tenant_of,
)
from functions.common.api_docs import BODY_RULES, create_responses, link, read_responses
from functions.common.ids import ID_PATTERN
from functions.common.kms_sealer import KmsSecretSealer
from functions.common.observability import logger, tracer
from functions.events import catalog, endpoints
from functions.events.endpoint_store import DynamoEndpointStore
from functions.events.endpoints import CreatedEndpoint, EndpointList, EndpointRequest
from functions.events.event_store import DynamoEventStore
from functions.events.models import EventList, EventType
from functions.events.settings import EventsApiSettings

app = build_resolver()
MAX_LIMIT = 100


@functools.cache
def _service() -> tuple[EventsApiSettings, DynamoEndpointStore, DynamoEventStore, KmsSecretSealer]:
    settings = EventsApiSettings.from_env()
    return (
        settings,
        DynamoEndpointStore(settings.endpoints_table),
        DynamoEventStore(settings.events_table),
        KmsSecretSealer(settings.secrets_key_arn),
    )


def _create_responses() -> dict[int, Any]:
    responses = create_responses(
        CreatedEndpoint,
        "Registered: the secret that signs its deliveries is in this response only (and in a retry's, with the "
        "same Idempotency-Key and body).",
        links={"ListEndpoints": link("list_webhook_endpoints", "Every endpoint, this one included.")},
    )
    responses[HTTPStatus.CREATED] = responses.pop(HTTPStatus.ACCEPTED)
    return responses


@app.post(
    "/v1/webhook-endpoints",
    operation_id="create_webhook_endpoint",
    summary="Register an endpoint that receives signed events",
    responses=_create_responses(),
)
def create_endpoint(
    request: Annotated[EndpointRequest, Body(description=BODY_RULES)], key: IdempotencyKey
) -> Response[Any]:
    settings, store, _, sealer = _service()
    created, new = endpoints.register(
        request,
        tenant_id=tenant_of(app),
        caller=caller_of(app),
        idempotency_key=key,
        allow_loopback_http=settings.allow_loopback_http,
        store=store,
        sealer=sealer,
    )
    logger.info("webhook endpoint registered", extra={"endpoint_id": created.endpoint_id, "replayed": not new})
    return Response(
        status_code=HTTPStatus.CREATED,
        content_type=content_types.APPLICATION_JSON,
        body=created.model_dump(mode="json"),
        headers={} if new else {REPLAYED_HEADER: "true"},
    )


@app.get(
    "/v1/webhook-endpoints",
    operation_id="list_webhook_endpoints",
    summary="List the webhook endpoints (never their secrets)",
    responses=read_responses("Every registered endpoint, oldest id first.", invalid=None),
)
def list_endpoints() -> EndpointList:
    _, store, _, _ = _service()
    return endpoints.list_endpoints(tenant_id=tenant_of(app), store=store)


@app.delete(
    "/v1/webhook-endpoints/<endpoint_id>",
    operation_id="delete_webhook_endpoint",
    summary="Remove a webhook endpoint: it receives nothing more, retries included",
    responses=read_responses("Removed.", not_found="`resource_missing` (`not_found`): no endpoint with this id."),
)
def delete_endpoint(endpoint_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> dict[str, Any]:
    _, store, _, _ = _service()
    endpoints.remove(endpoint_id, tenant_id=tenant_of(app), store=store)
    logger.info("webhook endpoint removed", extra={"endpoint_id": endpoint_id})
    return {"endpoint_id": endpoint_id, "deleted": True}


@app.get(
    "/v1/events",
    operation_id="list_events",
    summary="List events oldest first: the pull alternative to webhooks, and the way to catch up",
    responses=read_responses(
        "Up to `limit` events recorded after `starting_after`, oldest first.",
        not_found="`resource_missing` (`not_found`, `param`: starting_after): `starting_after` names no event of "
        "yours.",
    ),
)
def list_events(
    type: Annotated[EventType | None, Query(description="Only events of this type.")] = None,
    starting_after: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="The id of the last event you have.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
) -> EventList:
    _, _, events, _ = _service()
    return catalog.list_events(
        tenant_id=tenant_of(app), event_type=type, starting_after=starting_after, limit=limit, reader=events
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rejected = guard_request(event)
    if rejected is not None:
        return rejected
    return resolve_for_tenant(app, event, context)
