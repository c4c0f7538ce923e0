"""The PSP webhook handler against the template's resources in moto, under forged requests: a non-ASCII
signature or a body that is not UTF-8 is a 400 in the contract's error shape (never a 5xx), and forgeries
do not make it read the signing secret again: at most one GetSecretValue per cache period."""

from __future__ import annotations

import base64
import importlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters import base as parameters_base
from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider

from local_stack.deploy import LocalCloud
from tests.integration.conftest import api_event, context
from tests.support.psp_signatures import signature_header

HANDLER = "functions.psp_webhooks.handler.handler"
PATH = "/v1/webhooks/psp"


class Clock:
    """Powertools' parameter cache reads datetime.now(); this one can be moved forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def datetime(self) -> type[datetime]:
        clock = self

        class Shifted(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Shifted:  # type: ignore[override]
                return super().now(tz) + clock.offset  # type: ignore[return-value]

        return Shifted


@pytest.fixture
def secret_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every GetSecretValue the functions make, through Powertools' own secrets provider."""
    reads: list[str] = []
    client = boto3.client("secretsmanager")
    client.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", lambda params, **_: reads.append(params["SecretId"])
    )
    parameters.clear_caches()
    monkeypatch.setitem(parameters.base.DEFAULT_PROVIDERS, "secrets", SecretsProvider(boto3_client=client))
    yield reads
    parameters.clear_caches()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(parameters_base, "datetime", moved.datetime())
    return moved


@pytest.fixture
def webhooks(cloud: LocalCloud, use_function_env: Callable[[str], None]) -> Any:
    use_function_env(HANDLER)
    module = importlib.import_module("functions.psp_webhooks.handler")
    module.ports.cache_clear()
    return module


def post(handler: Any, body: bytes, signature: str | None, *, base64_body: bool = False) -> tuple[int, Any]:
    event = api_event("POST", PATH, headers={"PSP-Signature": signature} if signature is not None else {})
    event["body"] = base64.b64encode(body).decode() if base64_body else body.decode()
    event["isBase64Encoded"] = base64_body
    response = handler.handler(event, context("psp-webhooks"))
    return response["statusCode"], json.loads(response["body"])


def forged_event(number: int) -> bytes:
    event = {"id": f"evt_forged_{number}", "type": "charge.succeeded", "created": int(time.time()), "data": {}}
    return json.dumps(event).encode()


def test_a7_a_non_ascii_psp_signature_gets_400_in_the_error_shape(webhooks: Any, secret_reads: list[str]) -> None:
    body = forged_event(0)
    now = int(time.time())
    for signature in (f"t={now},v1={'é' * 64}", f"t={now},v1=ü", f"t={now},v1=\u0661\u0662"):
        status, answer = post(webhooks, body, signature)
        assert (status, answer["error"]["type"], answer["error"]["code"], answer["error"]["param"]) == (
            400,
            "invalid_request_error",
            "signature_invalid",
            "PSP-Signature",
        ), signature


def test_a7_a_body_that_is_not_utf8_gets_400_not_a_5xx(webhooks: Any, secret_reads: list[str]) -> None:
    body = b'{"id": "evt_\xff\xfe", "type": "charge.succeeded"}'
    status, answer = post(webhooks, body, signature_header("whsec_forged", int(time.time()), body), base64_body=True)
    assert (status, answer["error"]["code"]) == (400, "signature_invalid")


def test_a7_a_thousand_forged_webhooks_read_the_secret_once_per_cache_period(
    webhooks: Any, secret_reads: list[str], clock: Clock
) -> None:
    # Given a cold function: nothing read yet
    assert secret_reads == []

    # When 1,000 forged requests arrive, each signed with a secret of the forger's
    for number in range(1000):
        body = forged_event(number)
        status, answer = post(webhooks, body, signature_header(f"whsec_forged_{number}", int(time.time()), body))
        assert (status, answer["error"]["code"]) == (400, "signature_invalid")

    # Then the signing secret was read once, for the first of them
    assert len(secret_reads) == 1

    # And once the cache period has passed, the next 1,000 read it once more
    clock.offset = timedelta(seconds=webhooks.PspWebhookSettings.from_env().secret_cache_seconds + 1)
    for number in range(1000, 2000):
        body = forged_event(number)
        assert post(webhooks, body, signature_header("whsec_forged", int(time.time()), body))[0] == 400
    assert len(secret_reads) == 2
