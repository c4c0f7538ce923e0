"""The payout provider's payments (Tipalti-like): a payment pays an amount to a payee's bank account,
under an idempotency key. It is `submitted`, then `settle_delay` seconds later `paid` - or `failed` with
`account_closed` for the closed test account - each announced by a signed webhook. A payment to the refused
test account is refused at once (402 `invalid_account`) and recorded as failed, without a webhook, as the
PSP's payouts were (local_stack/psp/payouts.py)."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from local_stack.payout_provider.errors import error
from local_stack.payout_provider.payees import PayeeBook
from local_stack.psp.charges import Reply
from local_stack.psp.webhooks import WebhookSender

_FIELDS = ("payee_id", "amount", "currency", "reference")


@dataclass
class Payment:
    object: str
    id: str
    payee_id: str
    amount: int
    currency: str
    reference: str  # the caller's id of the payout
    status: str  # submitted | paid | failed
    failure_code: str | None
    created: int

    def public(self) -> dict[str, Any]:
        return asdict(self)


class PaymentBook:
    def __init__(self, payees: PayeeBook, webhooks: WebhookSender, *, settle_delay: float = 1.0) -> None:
        self.payees = payees
        self.webhooks = webhooks
        self.settle_delay = settle_delay
        self._payments: dict[str, Payment] = {}
        self._keys: dict[str, tuple[dict[str, Any], Reply]] = {}
        self._lock = threading.Lock()

    def create(self, idempotency_key: str | None, request: dict[str, Any]) -> Reply:
        """POST /payouts/v1/payments: the payment made with this key (made now if the key is new)."""
        if not idempotency_key:
            return error(400, "idempotency_key_required", "Idempotency-Key is required.")
        unknown = sorted(set(request) - set(_FIELDS))
        if unknown:
            return error(400, "parameter_invalid", f"Unknown field {unknown[0]}.", param=unknown[0])
        amount = request.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return error(400, "parameter_invalid", "amount must be a positive integer.", param="amount")
        for name in ("payee_id", "currency", "reference"):
            if not isinstance(request.get(name), str) or not request[name]:
                return error(400, "parameter_missing", f"{name} is required.", param=name)
        payee = self.payees.get(request["payee_id"])
        if payee is None:
            return error(404, "payee_not_found", "No such payee.", param="payee_id")
        if request["currency"] != payee.currency:
            # A bank account is paid in its own currency: the provider does not convert.
            return error(400, "currency_mismatch", "The payment's currency is not the payee's.", param="currency")
        fingerprint = {name: request[name] for name in _FIELDS}
        with self._lock:
            known = self._keys.get(idempotency_key)
            if known is not None:
                if known[0] != fingerprint:
                    return error(400, "idempotency_key_in_use", "Keys can only be reused with the same parameters.")
                return Reply(known[1].status, known[1].body)
            payment = Payment(
                object="payment",
                id=f"pmt_{uuid.uuid4().hex[:24]}",
                payee_id=payee.id,
                amount=amount,
                currency=payee.currency,
                reference=request["reference"],
                status="submitted",
                failure_code=None,
                created=int(time.time()),
            )
            if payee.outcome == "refused":
                payment.status, payment.failure_code = "failed", "invalid_account"
                reply = error(
                    402,
                    "invalid_account",
                    "The payee's bank refused the account.",
                    error_type="payment_error",
                    payment=payment.id,
                )
            else:
                reply = Reply(200, payment.public())
            self._payments[payment.id] = payment
            self._keys[idempotency_key] = (fingerprint, reply)
        if payment.status == "submitted":
            self.webhooks.emit("payment.submitted", payment.public(), final=False)
            closed = payee.outcome == "closed"
            timer = threading.Timer(self.settle_delay, self._settle, args=(payment.id, closed))
            timer.daemon = True  # a payment still settling never keeps the process alive
            timer.start()
        return Reply(reply.status, reply.body)

    def _settle(self, payment_id: str, closed: bool) -> None:
        with self._lock:
            payment = self._payments[payment_id]
            if closed:
                payment.status, payment.failure_code = "failed", "account_closed"
            else:
                payment.status = "paid"
            public = payment.public()
        self.webhooks.emit(f"payment.{payment.status}", public)

    def find(self, *, reference: str | None = None) -> list[Payment]:
        """The payments (of one reference, if given), oldest first."""
        with self._lock:
            payments = [Payment(**asdict(p)) for p in self._payments.values()]
        if reference is not None:
            payments = [p for p in payments if p.reference == reference]
        return sorted(payments, key=lambda p: (p.created, p.id))

    def get(self, payment_id: str) -> Payment | None:
        with self._lock:
            payment = self._payments.get(payment_id)
            return None if payment is None else Payment(**asdict(payment))
