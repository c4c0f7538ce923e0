"""The PSP client's refund lookups against a Stripe-style PSP (loopback HTTP): a list answers at most a page of
refunds (`has_more`, `starting_after`), and a refund may be `canceled` or `requires_action`. What the recovery
sweep and the auditor conclude from these lookups moves money, so "no refund" must mean the PSP has none."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from functions.psp.client import PspClient
from functions.psp.models import PspUnavailable, RefundResult
from local_stack.loopback import HttpRequest, HttpResponse, LoopbackServer
from tests.support.ports import free_port

PAGE = 3  # a Stripe-like list answers at most `limit` refunds (Stripe: 10 by default)


@dataclass
class PagedPsp:
    """A Stripe-style refunds list: oldest first, `PAGE` per answer, filtered by charge only (a merchant
    reference is not a filter it knows, so the client must find its refund in the pages itself)."""

    refunds: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def add(self, refund_id: str, *, charge: str, amount: int, status: str = "succeeded", reference: str) -> None:
        self.refunds.append(
            {
                "id": refund_id,
                "object": "refund",
                "charge": charge,
                "amount": amount,
                "status": status,
                "merchant_reference": reference,
                "failure_code": None,
            }
        )

    def respond(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request.path)
        url = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if request.method != "GET" or url.path != "/v1/refunds":
            return HttpResponse(404, b'{"error": {"code": "resource_missing"}}')
        found = [r for r in self.refunds if "charge" not in query or r["charge"] == query["charge"]]
        if "starting_after" in query:
            ids = [r["id"] for r in found]
            found = found[ids.index(query["starting_after"]) + 1 :]
        page = found[:PAGE]
        body = {"object": "list", "data": page, "has_more": len(found) > PAGE}
        return HttpResponse(200, json.dumps(body).encode())


@pytest.fixture
def paged() -> Iterator[tuple[PagedPsp, PspClient]]:
    psp = PagedPsp()
    port = free_port()
    server = LoopbackServer(psp.respond, host="127.0.0.1", port=port, name="paged-psp")
    server.start()
    try:
        yield psp, PspClient(f"http://127.0.0.1:{port}", api_key=lambda: "sk", timeout_seconds=2, max_retries=0)
    finally:
        server.stop()


def test_a_refund_past_the_first_page_is_found_not_reported_missing(paged: tuple[PagedPsp, PspClient]) -> None:
    # Given the PSP holds seven refunds; ours is the seventh (the third page)
    psp, client = paged
    for n in range(6):
        psp.add(f"re_{n}", charge=f"ch_{n}", amount=100, reference=f"rf_other_{n}")
    psp.add("re_ours", charge="ch_9", amount=400, status="pending", reference="rf_ours")

    # When the recovery sweep looks it up by its merchant reference
    found = client.refund_by_reference("rf_ours")

    # Then it is found (a "no refund" here would have the sweep send it again: a second refund once the
    # PSP's idempotency key has expired)
    assert found == RefundResult("pending", "re_ours", None)
    assert client.refund_by_reference("rf_never") is None


def test_a_charges_refunds_are_summed_over_every_page(paged: tuple[PagedPsp, PspClient]) -> None:
    # Given five partial refunds of one charge (one failed), and another charge's refund
    psp, client = paged
    for n, status in enumerate(("succeeded", "succeeded", "failed", "pending", "succeeded")):
        psp.add(f"re_{n}", charge="ch_1", amount=100 + n, status=status, reference=f"rf_{n}")
    psp.add("re_other", charge="ch_2", amount=999, reference="rf_other")

    # Then the auditor's figure is every page's pending and succeeded refunds of the charge
    assert client.refunded_amount("ch_1") == 100 + 101 + 103 + 104


@pytest.mark.parametrize(
    ("psp_status", "expected"),
    [
        # Stripe cancels a refund it will never pay: a failure (the webhook path maps it so too), else the
        # refund would stay PENDING and hold its amount of the charge for ever
        ("canceled", RefundResult("failed", "re_1", "refund_canceled")),
        ("requires_action", RefundResult("pending", "re_1", None)),
        ("succeeded", RefundResult("succeeded", "re_1", None)),
    ],
)
def test_the_psps_refund_statuses_are_read_as_verdicts(
    paged: tuple[PagedPsp, PspClient], psp_status: str, expected: RefundResult
) -> None:
    psp, client = paged
    psp.add("re_1", charge="ch_1", amount=100, status=psp_status, reference="rf_1")
    assert client.refund_by_reference("rf_1") == expected


def test_a_refund_status_the_client_does_not_know_is_no_verdict(paged: tuple[PagedPsp, PspClient]) -> None:
    psp, client = paged
    psp.add("re_1", charge="ch_1", amount=100, status="under_review", reference="rf_1")
    with pytest.raises(PspUnavailable):
        client.refund_by_reference("rf_1")
