"""Orders the file should have carried but did not (`missing_external` breaks), found once every row is in.

Cut-off skew: the file's cut-off is its latest row's `created_at`. A successful order missing from the
file is a permanent `missing_external` break if it was decided inside the file's span, and a *temporary*
one if decided after the cut-off (within the grace window): the PSP's clock may have put it into the
next file. The next file either carries it (the temporary break closes) or, having passed the order's
time, does not (the break is escalated to permanent in that run)."""

from __future__ import annotations

from datetime import datetime, timedelta

from functions.common.clock import iso
from functions.reconciliation.models import Claim
from functions.reconciliation.ports import ClaimStore, OrderSource
from functions.reconciliation.tally import Tally


def _timestamp(value: str) -> datetime | None:
    if len(value) < 20 or value[10] != "T":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def find_missing(tally: Tally, *, orders: OrderSource, claims: ClaimStore, grace: timedelta) -> None:
    """After every row is in: successful orders of the file's span that no row settled, and earlier
    temporary breaks this file should have carried."""
    if tally.first_created is None or tally.cutoff is None:
        return  # no valid row: the file has no span to check orders against
    cutoff = tally.cutoff
    for page in orders.succeeded_between(tally.first_created, cutoff + grace):
        stored = claims.claims([o.payment_order_id for o in page])
        for order in page:
            claim = stored.get(order.payment_order_id)
            mine = claim is not None and claim.run_id == tally.run_id and claim.state != "settled"
            if claim is not None and not mine:
                continue
            decided = _timestamp(order.decided_at or "")
            temporary = decided is not None and decided > cutoff
            if claim is None:
                claims.open_break(
                    Claim(
                        order.payment_order_id,
                        "awaiting" if temporary else "missing",
                        tally.run_id,
                        decided_at=order.decided_at or "",
                    )
                )
            detail = (
                f"decided {order.decided_at}, after the file's cut-off {iso(cutoff)}: expected in the next file"
                if temporary
                else f"{order.amount} {order.currency} decided {order.decided_at}, not in the file"
            )
            tally.add_break(
                "missing_external", None, order.psp_reference or "", order.payment_order_id, detail, temporary=temporary
            )
    escalated: set[str] = set()
    for claim in claims.awaiting_before(cutoff):
        if claim.run_id != tally.run_id and claims.escalate(claim, tally.run_id):
            escalated.add(claim.payment_order_id)
            _add_escalation(tally, claim)
    # An earlier attempt of this run may have escalated some and crashed before the run was written: they
    # are no longer awaiting, but still this run's (the index may not show the ones just escalated yet).
    for claim in claims.escalated_by(tally.run_id):
        if claim.payment_order_id not in escalated:
            _add_escalation(tally, claim)


def _add_escalation(tally: Tally, claim: Claim) -> None:
    tally.escalated += 1
    tally.add_break(
        "missing_external",
        None,
        claim.psp_reference,
        claim.payment_order_id,
        f"temporary break of run {claim.run_id} (decided {claim.decided_at}): this later file does not carry it",
    )
