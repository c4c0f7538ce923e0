"""Records the file should have carried but did not (`missing_external` breaks), found once every row is in:
succeeded orders (charge rows), and each other row type's settled records (refunds, paid payouts,
disputes opened, disputes won), through their RecordSource ports - of the file's sender's types only:
the PSP's file is never blamed for a payout, nor the payout provider's for an order, refund or dispute.

Cut-off skew: the file's cut-off is its latest row's `created_at`. A successful order missing from the
file is a permanent `missing_external` break if it was decided inside the file's span, and a *temporary*
one if decided after the cut-off (within the grace window): the PSP's clock may have put it into the
next file. The next file either carries it (the temporary break closes) or, having passed the order's
time, does not (the break is escalated to permanent in that run)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta

from functions.common.clock import iso
from functions.reconciliation.models import Claim, FileSender, Order, Record
from functions.reconciliation.ports import ClaimStore, OrderSource, RecordSource
from functions.reconciliation.row_kinds import ROW_KINDS, SENDER_TYPES, claim_key, split_claim_key
from functions.reconciliation.tally import Tally

NO_RECORDS: Mapping[str, RecordSource] = {}


def _timestamp(value: str) -> datetime | None:
    if len(value) < 20 or value[10] != "T":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _pages(
    carried: frozenset[str], orders: OrderSource, records: Mapping[str, RecordSource], start: datetime, end: datetime
) -> Iterator[tuple[str, list[Order] | list[Record]]]:
    """The settled records of the `carried` types, by type, a page at a time."""
    if "charge" in carried:
        yield from (("charge", page) for page in orders.succeeded_between(start, end))
    for kind, source in records.items():
        if kind in carried:
            yield from ((kind, page) for page in source.settled_between(start, end))


def find_missing(
    tally: Tally,
    *,
    sender: FileSender,
    orders: OrderSource,
    claims: ClaimStore,
    grace: timedelta,
    records: Mapping[str, RecordSource] = NO_RECORDS,
) -> None:
    """After every row of `sender`'s file is in: successful orders (and settled records of the other
    types) of the file's span that no row settled, and earlier temporary breaks this file should have
    carried - of the types `sender` settles."""
    if tally.first_created is None or tally.cutoff is None:
        return  # no valid row: the file has no span to check orders against
    cutoff = tally.cutoff
    carried = SENDER_TYPES[sender]
    for kind, page in _pages(carried, orders, records, tally.first_created, cutoff + grace):
        _missing_in(tally, claims, kind, page, cutoff)
    escalated: set[str] = set()
    for claim in claims.awaiting_before(cutoff):
        if split_claim_key(claim.payment_order_id)[0] not in carried:
            continue  # the other sender's file carries it, on its own clock
        if claim.run_id != tally.run_id and claims.escalate(claim, tally.run_id):
            escalated.add(claim.payment_order_id)
            _add_escalation(tally, claim)
    # An earlier attempt of this run may have escalated some and crashed before the run was written: they
    # are no longer awaiting, but still this run's (the index may not show the ones just escalated yet).
    for claim in claims.escalated_by(tally.run_id):
        if claim.payment_order_id not in escalated:
            _add_escalation(tally, claim)


def _missing_in(tally: Tally, claims: ClaimStore, kind: str, page: Iterable[Order | Record], cutoff: datetime) -> None:
    """The records of one page that no row of this file (or an earlier one) settled."""
    keyed = [(claim_key(kind, record[0]), record) for record in page]
    stored = claims.claims([key for key, _ in keyed])
    noun = ROW_KINDS[kind].record
    for key, record in keyed:
        claim = stored.get(key)
        mine = claim is not None and claim.run_id == tally.run_id and claim.state != "settled"
        if claim is not None and not mine:
            continue
        decided = _timestamp(record.decided_at or "")
        temporary = decided is not None and decided > cutoff
        if claim is None:
            claims.open_break(
                Claim(key, "awaiting" if temporary else "missing", tally.run_id, decided_at=record.decided_at or "")
            )
        if temporary:
            detail = f"decided {record.decided_at}, after the file's cut-off {iso(cutoff)}: expected in the next file"
        else:
            detail = f"{record.amount} {record.currency} decided {record.decided_at}, not in the file"
            if kind != "charge":
                detail = f"{kind} row of {noun} {detail}"
        tally.add_break("missing_external", None, record.psp_reference or "", record[0], detail, temporary=temporary)


def _add_escalation(tally: Tally, claim: Claim) -> None:
    tally.escalated += 1
    tally.add_break(
        "missing_external",
        None,
        claim.psp_reference,
        split_claim_key(claim.payment_order_id)[1],
        f"temporary break of run {claim.run_id} (decided {claim.decided_at}): this later file does not carry it",
    )
