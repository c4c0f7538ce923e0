"""Request fingerprints keep matching the bodies stored before a field was added: a retry of a payment or a
refund accepted before commissions or holds existed is still recognised as the same request, after its
idempotency record expired, while the new fields, once set, make a different request."""

from __future__ import annotations

from functions.common.fingerprints import fingerprint, without_added_defaults
from functions.payment import domain as payments
from functions.payment.models import PaymentRequest
from functions.refund import domain as refunds
from functions.refund.models import RefundRequest


def test_only_added_fields_at_their_added_default_are_left_out() -> None:
    added = {"hold": "none", "application_fee": 0}
    body = {"amount": 0, "hold": "none", "application_fee": 5}
    assert without_added_defaults(body, added) == {"amount": 0, "application_fee": 5}
    assert body == {"amount": 0, "hold": "none", "application_fee": 5}  # the body itself is left as it was


def test_a_refund_body_from_before_commissions_keeps_its_fingerprint() -> None:
    # The body as it was dumped before refund_application_fee existed
    before = {"payment_order_id": "po_1", "amount": 500, "reason": "requested_by_customer"}
    now = RefundRequest.model_validate(before)
    assert refunds.request_fingerprint(now) == fingerprint(before)
    assert refunds.request_fingerprint(RefundRequest.model_validate(before | {"refund_application_fee": True})) == (
        fingerprint(before)
    )
    kept = RefundRequest.model_validate(before | {"refund_application_fee": False})
    assert refunds.request_fingerprint(kept) == fingerprint(before | {"refund_application_fee": False})
    assert refunds.request_fingerprint(kept) != fingerprint(before)


def test_a_payment_body_from_before_commissions_and_holds_keeps_its_fingerprint() -> None:
    before = {
        "checkout_id": "co_1",
        "buyer_id": "b",
        "currency": "USD",
        "payment_method": "tok_visa",
        "orders": [{"payment_order_id": "po_1", "seller_id": "s", "amount": 100, "payment_method": None}],
        "metadata": None,
    }
    assert payments.request_fingerprint(PaymentRequest.model_validate(before)) == fingerprint(before)
    held = PaymentRequest.model_validate(before | {"orders": [before["orders"][0] | {"hold": "until_fulfilled"}]})
    assert payments.request_fingerprint(held) == fingerprint(
        before | {"orders": [before["orders"][0] | {"hold": "until_fulfilled"}]}
    )
