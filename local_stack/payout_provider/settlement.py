"""The payout provider's settlement file: one `payout` row per paid payment - `psp_reference` the payment
id, `merchant_reference` its reference (the caller's payout id), fee 0, net = amount, status `paid` - closed
by the summary rows, with the same header, query and injected differences as the PSP's file
(local_stack/psp/settlement.py, whose code builds it). Submitted and failed payments are not in it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from local_stack.payout_provider.payments import Payment
from local_stack.psp.charges import Reply
from local_stack.psp.settlement import PAYOUT_DELAY, Movement, SettlementBook, settlement_reply

FILE_PREFIX = "payout-provider-settlement"


def movements(payments: list[Payment]) -> list[Movement]:
    """A paid payment is booked when it was made, as the PSP booked its payouts."""
    return [
        Movement(datetime.fromtimestamp(p.created, UTC), p.id, p.reference, "payout", p.amount, p.currency, 0, "paid")
        for p in payments
        if p.status == "paid"
    ]


def unknown_payout_row(last: str) -> list[str]:
    """A payment the caller never asked for (extra=N)."""
    amount = 4200
    day = datetime.fromisoformat(last.replace("Z", "+00:00")) + PAYOUT_DELAY
    return [
        f"pmt_{uuid.uuid4().hex[:24]}",
        f"payout_unknown_{uuid.uuid4().hex[:8]}",
        "payout",
        str(amount),
        "USD",
        "0",
        str(amount),
        "paid",
        last,
        day.date().isoformat(),
    ]


def settlement_file(payments: list[Payment], book: SettlementBook, query: dict[str, list[str]]) -> Reply:
    """GET /payouts/v1/settlements: the file of the queried day or period."""
    return settlement_reply(movements(payments), book, query, name_prefix=FILE_PREFIX, extra_row=unknown_payout_row)
