"""The payout provider's webhooks: at least once, in any order. Each verified event is deduplicated by its
id, and a payment's verdict is recorded on the payout's execution item only if none is yet (the first
terminal verdict wins), so a late or repeated event never moves a decided payout. A verdict that
contradicts the recorded one, or names another payment than ours, changes nothing and is reported as a
conflict (alarmed: money may have moved twice, or come back from the bank)."""

from __future__ import annotations

from functions.payout_executor.domain import PayoutExecutionStore, TaskAnswers, confirm_payout
from functions.payout_executor.models import PayoutOutcome
from functions.psp_webhooks.domain import EventLog, our_reference, text_or_none
from functions.psp_webhooks.models import Applied, PspEvent

# The provider's event ids in the log shared with the PSP's receiver: the two may use the same ids.
EVENT_KEY_PREFIX = "payout-provider/"
PAYMENT_VERDICTS: dict[str, PayoutOutcome] = {"payment.paid": "paid", "payment.failed": "failed"}
# The failure code of a failed payment the provider did not explain.
PAYMENT_FAILED = "payout_failed"


def apply_payment_event(
    event: PspEvent, *, events: EventLog, payout_store: PayoutExecutionStore, answers: TaskAnswers
) -> Applied:
    """Apply one verified event. Recorded as done only after its effect, which is idempotent: a crash in
    between means the provider's retry applies it again, harmlessly."""
    if events.is_done(event.id):
        return "duplicate"
    payment = event.data  # the provider's events carry the payment itself as their data
    reference = our_reference(payment.get("reference"))  # our payout id
    verdict = PAYMENT_VERDICTS.get(event.type)
    outcome: Applied = "ignored"
    if verdict is not None and reference is not None:
        payment_id = text_or_none(payment.get("id"))
        record = confirm_payout(
            reference,
            verdict,
            psp_reference=payment_id,
            failure_code=text_or_none(payment.get("failure_code")) or (PAYMENT_FAILED if verdict == "failed" else None),
            store=payout_store,
            answers=answers,
        )
        # The first verdict stays. One that contradicts it (paid after failed: the seller got the money back
        # and was paid; failed after paid: a bank return) or names another payment is for a person, now.
        contradicts = record.outcome != verdict
        other_payment = payment_id is not None and record.psp_reference not in (None, "", payment_id)
        outcome = "conflict" if contradicts or other_payment else "applied"
    # Anything else (payment.submitted, unknown types) is acknowledged and ignored: it cannot move a payout.
    events.mark_done(event.id, event.type)
    return outcome
