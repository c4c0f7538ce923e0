"""The PSP API key: kept in Secrets Manager, read on first use (not at import or construction), cached by
Powertools parameters, and sent as a bearer token; a refused key never fails an order. The webhook signing
secrets are read through the same cache (common.secrets), and re-read only once its period has passed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from functions.common.secrets import SecretNotSet, SecretValue, get_secret
from functions.psp.client import PspClient
from functions.psp.models import PspUnavailable
from functions.psp_webhooks.store import SecretsManagerSigningSecrets


class _Psp(BaseHTTPRequestHandler):
    seen: list[str | None] = []
    status = 200

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Psp.seen.append(self.headers.get("Authorization"))
        body = json.dumps({"id": "ch_1", "status": "succeeded"} if _Psp.status == 200 else {"error": {}})
        self.send_response(_Psp.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def psp_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Psp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Psp.seen, _Psp.status = [], 200
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture
def secret_arn() -> Iterator[str]:
    parameters.clear_caches()
    with mock_aws():
        yield boto3.client("secretsmanager").create_secret(Name="psp-api-key", SecretString="sk_test_123")["ARN"]
    parameters.clear_caches()


def _charge(client: PspClient) -> Any:
    return client.charge(
        idempotency_key="po_1", amount=100, currency="USD", payment_method="tok_visa", merchant_reference="po_1"
    )


def test_the_key_is_read_lazily_cached_and_sent_as_a_bearer_token(psp_url: str, secret_arn: str) -> None:
    # Given a client whose key lives in Secrets Manager
    secret, reads = SecretValue(secret_arn), []

    def api_key() -> str:
        reads.append(1)
        return secret()

    client = PspClient(psp_url, timeout_seconds=2, max_retries=0, api_key=api_key)
    # Then building it reads nothing
    assert reads == []
    # When it charges twice
    assert _charge(client).status == "succeeded"
    boto3.client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString="sk_test_rotated")
    assert _charge(client).status == "succeeded"
    # Then both requests carried the key, the second from the cache (a rotation shows after max_age)
    assert _Psp.seen == ["Bearer sk_test_123", "Bearer sk_test_123"]
    assert get_secret(secret_arn, force_fetch=True) == "sk_test_rotated"
    assert "sk_test" not in repr(SecretValue(secret_arn))


def test_a_refused_key_is_retried_later_never_a_failed_order(psp_url: str, secret_arn: str) -> None:
    client = PspClient(psp_url, timeout_seconds=2, max_retries=0, api_key=SecretValue(secret_arn))
    _Psp.status = 401
    with pytest.raises(PspUnavailable, match="API key"):
        _charge(client)


def test_an_empty_secret_is_an_error_not_an_empty_token(secret_arn: str) -> None:
    boto3.client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString=" ")
    with pytest.raises(SecretNotSet):
        get_secret(secret_arn, force_fetch=True)


def test_a_rotation_shows_once_the_cache_period_has_passed(secret_arn: str) -> None:
    # Given a cached value, then a rotation
    secret = SecretValue(secret_arn, max_age=1)
    assert secret() == "sk_test_123"
    boto3.client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString="sk_test_rotated")
    # Then the cache still answers the old value within its period, and the new one after it
    assert secret() == "sk_test_123"
    time.sleep(1.1)
    assert secret() == "sk_test_rotated"


def test_webhook_signing_secrets_are_cached_for_their_period_then_read_again() -> None:
    parameters.clear_caches()
    with mock_aws():
        client = boto3.client("secretsmanager")
        arn = client.create_secret(Name="psp-webhook-secrets", SecretString='{"current": "whsec_a"}')["ARN"]
        secrets = SecretsManagerSigningSecrets(arn, max_age=1)
        assert secrets.get() == ["whsec_a"]
        client.put_secret_value(SecretId=arn, SecretString='{"current": "whsec_b", "previous": "whsec_a"}')
        assert secrets.get() == ["whsec_a"]
        time.sleep(1.1)
        assert secrets.get() == ["whsec_b", "whsec_a"]
    parameters.clear_caches()
