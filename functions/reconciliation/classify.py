"""Classifying a chunk of the file's rows against our records: matched, or which break.

A charge row is matched against the executor's order, the other types against our refund, payout or
dispute (row_kinds.py). A chunk's records (one batch per type) and claims are read in one batch each;
the rows that belong to a record are claimed
(conditionally, so a row seen twice - in this file or an earlier one - is a `duplicate_row`) and the
matched ones posted to the ledger. A row of a type the file's sender does not settle (a payout in the
PSP's file, a charge in the payout provider's) is a `malformed_row`: never looked up, claimed or booked,
and outside the file's span. The common chunk (every row a clean match) is classified column by
column (`all_matched`); any other row by row (`_classify_rows`), with the same result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from functions.common.events import JournalPosting
from functions.reconciliation.journal import cash_out_journal, settlement_journal
from functions.reconciliation.models import Claim, ClaimBatch, FileSender, Order, Outcome, Record
from functions.reconciliation.ports import ClaimStore, OrderSource, PostingSink, RecordSource
from functions.reconciliation.row_kinds import ROW_KINDS, SENDER_TYPES, booking, claim_key, foreign_row_detail
from functions.reconciliation.settlement_file import Columns, Malformed, Parsed, Row, Summary, columns_of, rows_of

SETTLED_STATUS = "succeeded"  # the PSP's status of a charge it paid out
NO_RECORDS: Mapping[str, RecordSource] = {}


@dataclass
class ChunkResult:
    """A chunk's rows: matched ones folded into sums, every other row an Outcome (in line order)."""

    rows: int = 0
    matched: int = 0
    settled_amounts: dict[str, int] = field(default_factory=dict)
    fees: dict[str, int] = field(default_factory=dict)
    paid_out: dict[str, int] = field(default_factory=dict)
    paid_out_fees: dict[str, int] = field(default_factory=dict)
    closed_temporary: int = 0
    settled_late: int = 0
    first_created: datetime | None = None
    last_created: datetime | None = None
    outcomes: list[Outcome] = field(default_factory=list)  # breaks (and matched rows when kept)


def classify_chunk(
    run_id: str,
    items: Sequence[Parsed],
    *,
    sender: FileSender,
    orders: OrderSource,
    claims: ClaimStore,
    postings: PostingSink,
    per_row: bool = False,
    records: Mapping[str, RecordSource] = NO_RECORDS,
) -> ChunkResult:
    """Classify one chunk of rows (in line order) of `sender`'s file, claim the rows that belong to an
    order, post the matched ones. Safe to repeat: a row's own earlier claim (same run and line) is not a
    duplicate.

    The stream path's chunks are fixed by the file (`CHUNK` rows from a given line), so a chunk's matched
    rows are booked as one journal per currency. `per_row` is for rows that arrive in batches of any
    make-up (the distributed path): each matched row is then its own journal, and kept as an outcome."""
    items = _own_rows(items, sender)
    columns = columns_of([i for i in items if type(i) is Row])
    items = [i for i in items if type(i) is not Summary]  # a summary is no row (closing_balance.py checks it)
    return _classify(
        run_id, items, columns, orders=orders, records=records, claims=claims, postings=postings, per_row=per_row
    )


def classify_columns(
    run_id: str,
    columns: Columns,
    *,
    sender: FileSender,
    orders: OrderSource,
    claims: ClaimStore,
    postings: PostingSink,
    records: Mapping[str, RecordSource] = NO_RECORDS,
) -> ChunkResult:
    """`classify_chunk` of a chunk of valid rows given as columns (`parse_block`'s), without their Rows
    (unless one is of a type `sender` does not settle)."""
    if not SENDER_TYPES[sender].issuperset(columns.types):
        return classify_chunk(
            run_id, rows_of(columns), sender=sender, orders=orders, claims=claims, postings=postings, records=records
        )
    return _classify(
        run_id, None, columns, orders=orders, records=records, claims=claims, postings=postings, per_row=False
    )


def _own_rows(items: Sequence[Parsed], sender: FileSender) -> Sequence[Parsed]:
    """The chunk, each row of a type `sender` does not settle made a Malformed line with the reason."""
    carried = SENDER_TYPES[sender]
    if all(not isinstance(i, Row) or i.type in carried for i in items):
        return items
    return [
        Malformed(i.line, foreign_row_detail(i.type, sender), i.psp_reference, i.merchant_reference)
        if isinstance(i, Row) and i.type not in carried
        else i
        for i in items
    ]


def _lookup(
    columns: Columns, orders: OrderSource, records: Mapping[str, RecordSource]
) -> tuple[list[str], list[Order | Record | None]]:
    """The chunk's claim keys (each once, in row order) and our record of each (None: no record)."""
    by_type: dict[str, dict[str, None]] = {}
    for reference, kind in zip(columns.merchant_references, columns.types, strict=True):
        by_type.setdefault(kind, {})[reference] = None
    keys: list[str] = []
    found: list[Order | Record | None] = []
    for kind, references in by_type.items():
        wanted = list(references)
        keys.extend(claim_key(kind, r) for r in wanted)
        source = records.get(kind)
        if kind == "charge":
            found.extend(orders.orders(wanted))
        elif source is not None:
            found.extend(source.records(wanted))
        else:
            found.extend([None] * len(wanted))
    return keys, found


def _classify(
    run_id: str,
    items: Sequence[Parsed] | None,
    columns: Columns | None,
    *,
    orders: OrderSource,
    records: Mapping[str, RecordSource],
    claims: ClaimStore,
    postings: PostingSink,
    per_row: bool,
) -> ChunkResult:
    """`columns` are the chunk's Rows' (None if it has no Row); `items` the chunk (without summaries), None
    if all are Rows."""
    count = 0 if columns is None else len(columns.lines)
    all_charges = columns is not None and columns.types.count("charge") == count
    if columns is None:
        references: list[str] = []
        found: list[Order | Record | None] = []
    elif all_charges:
        references = list(dict.fromkeys(columns.merchant_references))
        found = list(orders.orders(references))
    else:
        references, found = _lookup(columns, orders, records)
    claimable = [r for r, o in zip(references, found, strict=True) if o is not None] if None in found else references
    stored = claims.claims(claimable) if claimable else {}
    result = ChunkResult(rows=count if items is None else len(items))
    if columns is not None:
        result.first_created = min(columns.created_at)
        result.last_created = max(columns.created_at)
    batch = None
    if columns is not None and all_charges and not stored and not per_row and count == result.rows == len(claimable):
        # every row a charge of its own known order, none claimed yet, in row order: `found` is theirs
        batch = all_matched(run_id, columns, cast("list[Order]", found))
        if batch is not None:
            result.matched = count
            _add_by_currency(result, columns.currencies, columns.amounts, columns.fees)
    if batch is None:
        known = {r: o for r, o in zip(references, found, strict=True) if o is not None}
        rows = rows_of(cast("Columns", columns)) if items is None else items  # (no items: columns are given)
        batch = _classify_rows(run_id, rows, known, stored, result, per_row)
    if batch.lines:
        claims.settle(batch)
    journals = [journal for journal in _journals(run_id, items, columns, result, per_row) if journal is not None]
    if journals:
        postings.post(journals)
    return result


def _journals(
    run_id: str, items: Sequence[Parsed] | None, columns: Columns | None, result: ChunkResult, per_row: bool
) -> list[JournalPosting | None]:
    """Per row (the distributed path), or per chunk and currency: money in, then money out."""
    if per_row:
        return [
            (settlement_journal if ROW_KINDS[o.kind or "charge"].incoming else cash_out_journal)(
                run_id, o.line, o.currency, o.amount, o.fee
            )
            for o in result.outcomes
            if o.klass is None
        ]
    if not items and columns is None:
        return []
    first_line = cast("Columns", columns).lines[0] if items is None else items[0].line
    return [
        *(
            settlement_journal(run_id, first_line, currency, gross, result.fees[currency])
            for currency, gross in result.settled_amounts.items()
        ),
        *(
            cash_out_journal(run_id, first_line, currency, cleared, result.paid_out_fees[currency])
            for currency, cleared in result.paid_out.items()
        ),
    ]


def all_matched(run_id: str, columns: Columns, found: Sequence[Order]) -> ClaimBatch | None:
    """The common chunk, classified column by column in C loops: its claims if every row matches its
    order, else None (then `_classify_rows` classifies it row by row).

    `columns` are the chunk's Rows', each a charge of its own known order, `found[i]` being row i's, and
    none of the orders has a claim yet. Every row then matches - exactly what `_classify_rows` would
    find - when it has its order's PSP reference, currency and amount, settled by the PSP and succeeded
    for us."""
    count = len(columns.lines)
    if columns.statuses.count(SETTLED_STATUS) != count:
        return None
    _, order_statuses, order_amounts, order_currencies, order_psp_references, decided_at, _ = zip(*found, strict=True)
    if (
        order_psp_references != columns.psp_references
        or order_currencies != columns.currencies
        or order_amounts != columns.amounts
        or order_statuses.count("SUCCEEDED") != count
    ):
        return None
    if None in decided_at:
        decided_at = tuple(d or "" for d in decided_at)
    return ClaimBatch(
        run_id, columns.merchant_references, columns.lines, columns.psp_references, decided_at, (None,) * count
    )


def _add_by_currency(
    result: ChunkResult, currencies: Sequence[str], amounts: Sequence[int], fees: Sequence[int]
) -> None:
    """Matched rows' gross and fees summed per currency (in order of first appearance)."""
    if currencies.count(currencies[0]) == len(currencies):  # (comparing is cheaper than hashing each)
        result.settled_amounts[currencies[0]] = sum(amounts)
        result.fees[currencies[0]] = sum(fees)
        return
    for currency, amount, fee in zip(currencies, amounts, fees, strict=True):
        result.settled_amounts[currency] = result.settled_amounts.get(currency, 0) + amount
        result.fees[currency] = result.fees.get(currency, 0) + fee


def _classify_rows(
    run_id: str,
    items: Sequence[Parsed],
    known: Mapping[str, Order | Record],
    stored: dict[str, Claim],
    result: ChunkResult,
    keep_matched: bool,
) -> ClaimBatch:
    """Each item of a chunk in line order: breaks (and matched rows if kept) into `result.outcomes`,
    matched rows into its sums; returns the claims to write."""
    outcomes = result.outcomes
    claim_order: list[str] = []
    claim_line: list[int] = []
    claim_psp: list[str] = []
    claim_decided: list[str] = []
    claim_prior: list[Claim | None] = []
    first_line: dict[str, int] = {}
    for item in items:
        if type(item) is Malformed:
            outcomes.append(
                Outcome(
                    item.line, "malformed_row", False, item.psp_reference, item.merchant_reference, None, item.reason
                )
            )
            continue
        row: Row = item  # type: ignore[assignment]
        reference = row.merchant_reference
        kind = ROW_KINDS[row.type]
        key = claim_key(row.type, reference)
        order = known.get(key)
        if order is None or (order.psp_reference is not None and order.psp_reference != row.psp_reference):
            detail = (
                f"no internal record of this {row.type}"
                if order is None
                else f"order {reference} was charged as {order.psp_reference}"
                if row.type == "charge"
                else f"{kind.record} {reference} is {order.psp_reference} at the PSP"
            )
            outcomes.append(
                Outcome(row.line, "missing_internal", False, row.psp_reference, reference, row.created_at, detail)
            )
            continue
        earlier = first_line.get(key)
        claim = stored.get(key)
        if claim is not None and claim.state == "settled" and earlier is None:
            if claim.run_id == run_id:
                if claim.line != row.line:
                    earlier = claim.line  # an earlier chunk (or attempt) of this run settled it
            else:
                outcomes.append(
                    Outcome(
                        row.line,
                        "duplicate_row",
                        False,
                        row.psp_reference,
                        reference,
                        row.created_at,
                        f"already settled by run {claim.run_id} line {claim.line}",
                    )
                )
                continue
        if earlier is not None:
            outcomes.append(
                Outcome(
                    row.line, "duplicate_row", False, row.psp_reference, reference, row.created_at, f"line {earlier}"
                )
            )
            continue
        first_line[key] = row.line
        closed = ""
        if claim is not None and claim.state != "settled":
            closed = "temporary" if claim.state == "awaiting" else "permanent"
            if closed == "temporary":
                result.closed_temporary += 1
            else:
                result.settled_late += 1
        claim_order.append(key)
        claim_line.append(row.line)
        claim_psp.append(row.psp_reference)
        claim_decided.append(order.decided_at or "")
        claim_prior.append(claim)
        our_fee = order.fee if kind.compares_fee and type(order) is Record else row.fee
        if row.currency != order.currency:
            klass, detail = "currency_mismatch", f"file {row.currency}, {kind.record} {order.currency}"
        elif row.amount != order.amount or row.fee != our_fee:
            klass, detail = "amount_mismatch", f"file {row.amount}, {kind.record} {order.amount} {order.currency}"
            if row.fee != our_fee:
                detail += f" (fee: file {row.fee}, {kind.record} {our_fee})"
        elif row.status != kind.settled_status or order.status not in kind.our_statuses:
            klass, detail = "status_mismatch", f"file {row.status}, {kind.record} {order.status}"
        else:
            result.matched += 1
            currency = row.currency
            amount, fee = booking(kind, row.amount, row.fee)
            amounts, fees = (
                (result.settled_amounts, result.fees) if kind.incoming else (result.paid_out, result.paid_out_fees)
            )
            amounts[currency] = amounts.get(currency, 0) + amount
            fees[currency] = fees.get(currency, 0) + fee
            if keep_matched:
                outcomes.append(
                    Outcome(
                        row.line,
                        None,
                        False,
                        row.psp_reference,
                        reference,
                        row.created_at,
                        "",
                        closed,
                        amount,
                        fee,
                        currency,
                        row.type,
                    )
                )
            continue
        outcomes.append(Outcome(row.line, klass, False, row.psp_reference, reference, row.created_at, detail, closed))
    return ClaimBatch(run_id, claim_order, claim_line, claim_psp, claim_decided, claim_prior)
