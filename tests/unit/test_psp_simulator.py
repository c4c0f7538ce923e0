"""The PSP simulator's charge book: the contract's test tokens and idempotency keys."""

from __future__ import annotations

import threading

from local_stack.psp.charges import ChargeBook


def _request(token: str, reference: str = "po_1", amount: int = 500) -> dict[str, object]:
    return {"amount": amount, "currency": "USD", "payment_method": token, "merchant_reference": reference}


def test_same_key_returns_the_same_charge_and_charges_once() -> None:
    book = ChargeBook()
    first = book.create("po_1", _request("tok_visa"))
    again = book.create("po_1", _request("tok_visa"))
    assert (first.status, again.status) == (200, 200)
    assert first.body == again.body
    assert len(book.find(merchant_reference="po_1")) == 1


def test_same_key_with_other_parameters_is_refused() -> None:
    book = ChargeBook()
    book.create("po_1", _request("tok_visa"))
    reused = book.create("po_1", _request("tok_visa", amount=501))
    assert (reused.status, reused.body["error"]["type"]) == (400, "idempotency_error")


def test_declines_are_402_with_the_decline_code() -> None:
    book = ChargeBook()
    declined = book.create("po_1", _request("tok_chargeDeclined"))
    poor = book.create("po_2", _request("tok_insufficient_funds", "po_2"))
    assert (declined.status, declined.body["error"]["code"]) == (402, "card_declined")
    assert (poor.status, poor.body["error"]["code"]) == (402, "insufficient_funds")


def test_processing_error_fails_twice_then_charges_once() -> None:
    book = ChargeBook()
    statuses = [book.create("po_1", _request("tok_processing_error")).status for _ in range(4)]
    assert statuses == [500, 500, 200, 200]
    assert len(book.find(merchant_reference="po_1")) == 1


def test_timeout_charges_on_the_first_call_but_holds_its_response_back() -> None:
    book = ChargeBook(lost_response_delay=7.0)
    first = book.create("po_1", _request("tok_timeout"))
    second = book.create("po_1", _request("tok_timeout"))
    assert (first.status, first.delay_seconds) == (200, 7.0)
    assert (second.status, second.delay_seconds, second.body["id"]) == (200, 0.0, first.body["id"])


def test_pending_and_unknown_tokens() -> None:
    book = ChargeBook()
    assert book.create("po_1", _request("tok_pending")).body["status"] == "pending"
    assert book.create("po_2", _request("tok_bogus", "po_2")).status == 400
    assert book.create(None, _request("tok_visa")).status == 400


def test_concurrent_requests_with_one_key_charge_once() -> None:
    book = ChargeBook()
    replies = []
    threads = [
        threading.Thread(target=lambda: replies.append(book.create("po_c", _request("tok_visa", "po_c"))))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.body["id"] for r in replies}) == 1
    assert len(book.find(merchant_reference="po_c")) == 1
