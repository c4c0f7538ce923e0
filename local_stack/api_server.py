"""The local API Gateway: HTTP on loopback, turned into REST API proxy events for the functions the
template's methods integrate with, and their proxy responses back into HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aws_lambda_powertools.event_handler.openapi import swagger_ui

from local_stack.deploy import LocalCloud, Route
from local_stack.lambda_runtime import InvocationError, LambdaService
from local_stack.loopback import HttpRequest, HttpResponse, LoopbackServer
from local_stack.template import ACCOUNT_ID

log = logging.getLogger("local_stack.api")
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own limit; the functions enforce tighter ones
JSON_HEADERS = {"Content-Type": "application/json"}

# Swagger UI at /docs from the copy Powertools ships: no CDN, and no call to the online validator.
DOCS_PATH = "/docs"
SWAGGER_UI_ASSETS = {
    "swagger-ui-bundle.min.js": "application/javascript; charset=utf-8",
    "swagger-ui.min.css": "text/css; charset=utf-8",
}
SWAGGER_UI_DIR = Path(swagger_ui.__file__).parent
DOCS_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Marketplace Payments API</title>
<link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.min.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{DOCS_PATH}/swagger-ui-bundle.min.js"></script>
<script>
SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null, deepLinking: true,
  persistAuthorization: true}});
</script>
</body>
</html>
""".encode()


def local_api_key_id(api_key: str) -> str:
    """The id the local gateway gives an API key (in AWS, the ApiKey resource's id): derived from the key,
    so it is the same for the same key whatever order the keys are configured in."""
    return "lk" + hashlib.sha256(api_key.encode()).hexdigest()[:16]


def _pattern(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
    return re.compile(f"^{regex}$")


class LocalApiGateway:
    def __init__(
        self,
        cloud: LocalCloud,
        *,
        lambdas: LambdaService,
        api_key: str,
        extra_api_keys: Sequence[str] = (),
        stage: str = "local",
        openapi: dict[str, Any] | None = None,
    ) -> None:
        self.cloud = cloud
        self.lambdas = lambdas
        self.api_key = api_key
        # Every key the gateway accepts, with its id: the caller the functions scope idempotency to.
        self.api_key_ids = {key: local_api_key_id(key) for key in (api_key, *extra_api_keys)}
        self.stage = stage
        self.openapi = openapi
        self.routes = [(route, _pattern(route.path)) for route in cloud.routes]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route, pattern in self.routes:
            found = pattern.match(path)
            if found and route.method in (method, "ANY"):
                return route, found.groupdict()
        return None

    def gateway_response(self, response_type: str, default_status: int, default_message: str) -> tuple[int, bytes]:
        configured = self.cloud.gateway_responses.get(response_type)
        if configured is None:
            return default_status, json.dumps({"message": default_message}).encode()
        return configured.status_code, configured.body.encode()

    def allowed_methods(self, path: str) -> list[str]:
        return sorted({route.method for route, pattern in self.routes if pattern.match(path)})

    def local_resource(self, method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
        """What the local API serves besides the template's routes: health, the document and its UI."""
        if path == "/health" or (path in ("/openapi.json", DOCS_PATH) and self.openapi is not None):
            if method != "GET":
                return _method_not_allowed(["GET"])
            if path == "/health":
                health = {"status": "ok", "function_timeouts": self.lambdas.timeouts()}
                return 200, JSON_HEADERS, json.dumps(health).encode()
            if path == DOCS_PATH:
                return 200, {"Content-Type": "text/html; charset=utf-8"}, DOCS_PAGE
            return 200, JSON_HEADERS, json.dumps(self.openapi).encode()
        asset = path.removeprefix(f"{DOCS_PATH}/")
        if method == "GET" and asset in SWAGGER_UI_ASSETS:
            headers = {"Content-Type": SWAGGER_UI_ASSETS[asset], "Cache-Control": "max-age=3600"}
            return 200, headers, (SWAGGER_UI_DIR / asset).read_bytes()
        return None

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(raw_path)
        local = self.local_resource(method, url.path)
        if local is not None:
            return local
        matched = self.match(method, url.path)
        if matched is None:
            allowed = self.allowed_methods(url.path)
            if allowed:
                return _method_not_allowed(allowed)
            status, payload = self.gateway_response("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token")
            return status, JSON_HEADERS, payload
        route, path_parameters = matched
        lowered = {k.lower(): v for k, v in headers.items()}
        api_key_id = self.api_key_ids.get(lowered.get("x-api-key") or "")
        if route.api_key_required and api_key_id is None:
            status, payload = self.gateway_response("INVALID_API_KEY", 403, "Forbidden")
            return status, JSON_HEADERS, payload
        if len(body) > MAX_PAYLOAD_BYTES:
            return 413, JSON_HEADERS, _error("invalid_request_error", "body_too_large", "Request body too large.")
        event = self._event(route, url.path, url.query, method, headers, body, path_parameters, source_ip)
        if route.api_key_required:
            event["requestContext"]["identity"]["apiKeyId"] = api_key_id
        if self.lambdas.meter is not None:
            self.lambdas.meter.record_api_request()
        try:
            result = self.lambdas.invoke(route.function, event)
        except InvocationError as error:
            log.warning("%s %s: function error: %s", method, url.path, error)
            return 502, JSON_HEADERS, _error("api_error", "internal_error", "Internal server error.")
        return self._http_response(result)

    def _event(
        self,
        route: Route,
        path: str,
        query: str,
        method: str,
        headers: dict[str, str],
        body: bytes,
        path_parameters: dict[str, str],
        source_ip: str,
    ) -> dict[str, Any]:
        multi_query = parse_qs(query, keep_blank_values=True)
        try:
            text_body: str | None = body.decode() if body else None
            is_base64 = False
        except UnicodeDecodeError:
            text_body, is_base64 = base64.b64encode(body).decode(), True
        request_id = str(uuid.uuid4())
        return {
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": dict(headers),
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.path,
                "httpMethod": method,
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "accountId": ACCOUNT_ID,
                "apiId": "local",
                "protocol": "HTTP/1.1",
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {
                    "sourceIp": source_ip,
                    "apiKey": headers.get("x-api-key"),
                    "userAgent": headers.get("User-Agent"),
                },
            },
            "body": text_body,
            "isBase64Encoded": is_base64,
        }

    @staticmethod
    def _http_response(result: Any) -> tuple[int, dict[str, str], bytes]:
        if not isinstance(result, dict) or "statusCode" not in result:
            return 502, JSON_HEADERS, _error("api_error", "internal_error", "Malformed Lambda proxy response.")
        headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(str(v) for v in values)
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        return int(result["statusCode"]), headers, payload


def _error(error_type: str, code: str, message: str) -> bytes:
    return json.dumps({"error": {"type": error_type, "code": code, "message": message}}).encode()


def _method_not_allowed(allowed: list[str]) -> tuple[int, dict[str, str], bytes]:
    """A path the API has, with a method it has not: 405 and the methods it has (RFC 9110)."""
    message = f"This path accepts {', '.join(allowed)}."
    payload = _error("invalid_request_error", "method_not_allowed", message)
    return 405, {**JSON_HEADERS, "Allow": ", ".join(allowed)}, payload


def api_server(gateway: LocalApiGateway, *, host: str, port: int) -> LoopbackServer:
    def respond(request: HttpRequest) -> HttpResponse:
        status, headers, payload = gateway.handle(
            request.method, request.path, request.headers, request.body, request.client_ip
        )
        return HttpResponse(status, payload, headers)

    return LoopbackServer(respond, host=host, port=port, name="api-gateway")
