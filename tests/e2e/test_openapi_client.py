"""A Python client generated (openapi-python-client) from the live stack's /openapi.json makes a payment and
reads it back: the document is good enough to build on."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from local_stack.stack import LocalStack
from tests.e2e.conftest import API_KEY
from tests.support.api import new_key, unique

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "payments_client"


@pytest.fixture(scope="module")
def client_package(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = tmp_path_factory.mktemp("generated")
    config = workdir / "config.yaml"
    # No post hooks: the generator would run ruff from PATH.
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    generated = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--url",
            f"{stack.api_url}/openapi.json",
            "--meta",
            "none",
            "--output-path",
            str(workdir / PACKAGE),
            "--config",
            str(config),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(workdir))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(workdir))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_generated_client_makes_a_payment_and_reads_it_back(client_package: Any, stack: LocalStack) -> None:
    create_payment = importlib.import_module(f"{PACKAGE}.api.default.create_payment")
    read_payment = importlib.import_module(f"{PACKAGE}.api.default.read_payment")
    models = importlib.import_module(f"{PACKAGE}.models")
    client = client_package.AuthenticatedClient(
        base_url=stack.api_url,
        token=API_KEY,
        prefix="",
        auth_header_name="x-api-key",
        raise_on_unexpected_status=True,
    )
    seller, order_id = unique("seller"), unique("po")
    request = models.PaymentRequest(
        checkout_id=unique("co"),
        buyer_id=unique("buyer"),
        currency=models.PaymentRequestCurrency.EUR,
        payment_method="tok_visa",
        orders=[models.OrderRequest(payment_order_id=order_id, seller_id=seller, amount=1234)],
    )
    created = create_payment.sync_detailed(client=client, body=request, idempotency_key=new_key())
    assert created.status_code == 202
    payment = created.parsed
    assert isinstance(payment, models.PaymentResponse)
    assert (payment.status, payment.currency, payment.amount) == ("PROCESSING", "EUR", 1234)

    deadline = time.monotonic() + 120
    read = read_payment.sync(client=client, payment_id=payment.payment_id)
    while isinstance(read, models.PaymentResponse) and read.status == "PROCESSING" and time.monotonic() < deadline:
        time.sleep(0.5)
        read = read_payment.sync(client=client, payment_id=payment.payment_id)
    assert isinstance(read, models.PaymentResponse)
    assert (read.payment_id, read.checkout_id, read.status) == (payment.payment_id, request.checkout_id, "SUCCEEDED")
    [order] = read.orders
    assert (order.payment_order_id, order.seller_id, order.amount, order.status) == (
        order_id,
        seller,
        1234,
        "SUCCEEDED",
    )

    missing = read_payment.sync_detailed(client=client, payment_id="pay_unknown")
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.ErrorResponse)
    assert missing.parsed.error.type_ == "not_found"
