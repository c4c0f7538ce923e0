"""In-process moto (mock_aws) with the synthesized template's resources, and each function's own
environment, so handlers run exactly as configured in the template."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.common.aws import reset_clients
from functions.common.dynamo import reset_tables
from local_stack.deploy import Deployer, LocalCloud
from local_stack.lambda_worker import LocalContext
from tests.conftest import Synthesized

# The API key id every API event carries unless a test says otherwise (API Gateway sets it on keyed routes).
API_KEY_ID = "test-api-key-id"


@pytest.fixture
def cloud(synthesized: Synthesized) -> Iterator[LocalCloud]:
    with mock_aws():
        reset_clients()
        reset_tables()
        yield Deployer(synthesized.template, "Payments", boto3.client).deploy()
    reset_clients()
    reset_tables()


@pytest.fixture
def use_function_env(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Give this process the environment of the function whose handler is `handler_path`."""

    def apply(handler_path: str) -> None:
        spec = next(f for f in cloud.functions.values() if f.handler == handler_path)
        for key, value in spec.environment.items():
            monkeypatch.setenv(key, value)

    return apply


def context(name: str = "test-function", timeout_seconds: int = 30) -> LocalContext:
    return LocalContext(function_name=name, memory_mb=512, timeout_seconds=timeout_seconds, request_id="req-1")


def api_event(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    *,
    api_key_id: str | None = API_KEY_ID,
) -> dict[str, Any]:
    """A REST API proxy event; `api_key_id` is what API Gateway puts in it for a keyed route (None: no key)."""
    identity = {"sourceIp": "127.0.0.1"} | ({"apiKeyId": api_key_id} if api_key_id is not None else {})
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": path,
            "stage": "test",
            "requestId": "r",
            "accountId": "123456789012",
            "apiId": "a",
            "identity": identity,
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def sqs_event(*bodies: str, source: str = "arn:aws:sqs:us-east-1:123456789012:q") -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"h{i}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1",
                    "SenderId": "s",
                    "ApproximateFirstReceiveTimestamp": "1",
                },
                "messageAttributes": {},
                "md5OfBody": "x",
                "eventSource": "aws:sqs",
                "eventSourceARN": source,
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }
