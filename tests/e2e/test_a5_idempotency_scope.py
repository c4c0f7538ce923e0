"""Issue 11 A5 over the local stack's real HTTP, with two API keys: each key is its own caller."""

from __future__ import annotations

from tests.support.api import ApiClient, checkout, new_key


def test_a5_two_api_keys_with_one_idempotency_key_make_two_payments(api: ApiClient, second_api: ApiClient) -> None:
    key = new_key()
    first_body, second_body = checkout(("seller_a5_a", 1200)), checkout(("seller_a5_b", 3400))

    # Given two clients that send different checkouts under the same Idempotency-Key
    first = api.post("/v1/payments", first_body, idempotency_key=key)
    second = second_api.post("/v1/payments", second_body, idempotency_key=key)

    # Then each gets its own payment, not a replay or a refusal
    assert (first.status, second.status) == (202, 202), (first.body, second.body)
    assert "idempotent-replayed" not in second.headers
    assert first.body["payment_id"] != second.body["payment_id"]
    assert [first.body["amount"], second.body["amount"]] == [1200, 3400]

    # And both are charged and settle
    assert api.wait_for_payment(first.body["payment_id"])["status"] == "SUCCEEDED"
    assert second_api.wait_for_payment(second.body["payment_id"])["status"] == "SUCCEEDED"

    # And each client's retry replays its own payment
    replay = second_api.post("/v1/payments", second_body, idempotency_key=key)
    assert (replay.status, replay.headers.get("idempotent-replayed")) == (202, "true")
    assert replay.body["payment_id"] == second.body["payment_id"]

    # While the same client reusing the key for another checkout is refused
    reused = api.post("/v1/payments", checkout(("seller_a5_a", 1)), idempotency_key=key)
    assert reused.status == 422
    assert (reused.body["error"]["type"], reused.body["error"]["code"]) == (
        "idempotency_error",
        "idempotency_key_reused",
    )


def test_a5_a_key_the_stack_does_not_know_is_refused(api: ApiClient) -> None:
    stranger = ApiClient(api.base_url, "not-a-configured-key")

    response = stranger.post("/v1/payments", checkout(("seller_a5_c", 100)))

    assert response.status == 403
    assert response.body["error"]["type"] == "authentication_error"
