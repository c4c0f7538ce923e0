"""docs/api.md describes every route the API serves: each route of the OpenAPI document (generated the
way the local stack serves it at /openapi.json) and the routes the gateway answers itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.openapi import openapi_document
from local_stack.api_server import LocalApiGateway
from local_stack.deploy import LocalCloud
from local_stack.lambda_runtime import LambdaService

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
# Answered by the local gateway without any function (see LocalApiGateway.handle).
GATEWAY_ROUTES = (("GET", "/health"), ("GET", "/openapi.json"))


def openapi_routes() -> list[tuple[str, str]]:
    return sorted((method.upper(), path) for path, item in openapi_document()["paths"].items() for method in item)


def test_the_openapi_document_has_the_public_routes() -> None:
    routes = openapi_routes()
    assert ("POST", "/v1/payments") in routes
    assert ("GET", "/v1/payments/{payment_id}") in routes
    assert ("POST", "/v1/webhooks/psp") in routes


@pytest.mark.parametrize(("method", "path"), openapi_routes())
def test_every_openapi_route_is_in_the_api_doc(method: str, path: str) -> None:
    assert f"`{method} {path}`" in API_DOC.read_text()


@pytest.mark.parametrize(("method", "path"), GATEWAY_ROUTES)
def test_every_route_the_gateway_answers_itself_is_in_the_api_doc(method: str, path: str) -> None:
    # Given a gateway with no function routes at all
    gateway = LocalApiGateway(
        LocalCloud(stack_name="Payments", physical={}),
        lambdas=LambdaService({}, base_env={}, log=None),
        api_key="key",
        openapi={"openapi": "3.1.0"},
    )

    # When the route is called without an API key
    status, _, _ = gateway.handle(method, path, {}, b"", "127.0.0.1")

    # Then the gateway answers it, and the doc describes it
    assert status == 200
    assert f"`{method} {path}`" in API_DOC.read_text()
