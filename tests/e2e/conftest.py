"""One local stack (moto server, local Lambda workers, pollers, API, PSP simulator) shared by the
end-to-end tests, on free loopback ports, built from the session's synthesized template."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.psp.simulator import bearer
from local_stack.stack import LocalStack, LocalStackConfig, aws_clients
from tests.conftest import Synthesized
from tests.support.api import ApiClient
from tests.support.ports import free_port

API_KEY = "e2e-test-key"
# A second client of the same stack: its own caller, with its own Idempotency-Keys.
SECOND_API_KEY = "e2e-second-client-key"
# A key that belongs to a tenant of its own (registered before its first request: tests/e2e/test_tenants.py).
TENANT_API_KEY = "e2e-tenant-client-key"


@pytest.fixture(scope="session")
def stack(synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    log_path: Path = tmp_path_factory.mktemp("logs") / "local-stack.log"
    config = LocalStackConfig(
        port=free_port(),
        psp_port=free_port(),
        aws_port=free_port(),
        api_key=API_KEY,
        extra_api_keys=(SECOND_API_KEY, TENANT_API_KEY),
        template=synthesized.template_path,
        psp_lost_response_delay=3.0,
    )
    with log_path.open("w") as log:
        local = LocalStack(config, log_stream=log)
        local.start()
        try:
            yield local
        finally:
            local.stop()


@pytest.fixture(scope="session")
def api(stack: LocalStack) -> ApiClient:
    return ApiClient(stack.api_url, API_KEY)


@pytest.fixture(scope="session")
def second_api(stack: LocalStack) -> ApiClient:
    return ApiClient(stack.api_url, SECOND_API_KEY)


@pytest.fixture(scope="session")
def psp(stack: LocalStack) -> ApiClient:
    return ApiClient(stack.psp_url, None, headers=bearer(stack.config.psp_api_key))


@pytest.fixture(scope="session")
def provider(stack: LocalStack) -> ApiClient:
    """The payout provider's simulator (its routes under /payouts/ on the PSP simulator's server), with its key."""
    return ApiClient(stack.psp_url, None, headers=bearer(stack.config.payout_provider_api_key))


@pytest.fixture(scope="session")
def aws(stack: LocalStack):  # type: ignore[no-untyped-def]
    return aws_clients(stack.aws_endpoint)
