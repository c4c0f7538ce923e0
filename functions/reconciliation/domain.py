"""Settlement-file reconciliation: pure logic over ports, streamed row by row in bounded chunks.

A run reads the PSP's file once, in order, `CHUNK` rows at a time: each chunk's orders and settlement
claims are fetched in one batch, every row is classified, matched rows are claimed (conditionally, so a
row seen twice - in this file or an earlier one - is a `duplicate_row`) and posted to the ledger. Nothing
grows with the file but the counters: breaks go to a spooled CSV, review items are capped, and missing
orders are found afterwards by paging the executor's index of decided orders against the claims.

Cut-off skew: the file's cut-off is its latest row's `created_at`. A successful order missing from the
file is a permanent `missing_external` break if it was decided inside the file's span, and a *temporary*
one if decided after the cut-off (within the grace window): the PSP's clock may have put it into the
next file. The next file either carries it (the temporary break closes) or, having passed the order's
time, does not (the break is escalated to permanent in that run)."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice, repeat
from operator import add, attrgetter
from typing import IO, Any, Literal, NamedTuple, Protocol, cast

from pydantic import BaseModel, Field

from functions.common.events import JournalPosting, PostingLine
from functions.common.ids import deterministic_id
from functions.common.money import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR

SETTLEMENT_COLUMNS = (
    "psp_reference",
    "merchant_reference",
    "type",
    "amount",
    "currency",
    "fee",
    "net",
    "status",
    "created_at",
    "available_on",
)
ROW_TYPES = frozenset({"charge", "refund", "payout"})
BREAK_CLASSES = (
    "missing_internal",
    "missing_external",
    "amount_mismatch",
    "currency_mismatch",
    "status_mismatch",
    "duplicate_row",
    "malformed_row",
)
SETTLED_STATUS = "succeeded"  # the PSP's status of a charge it paid out
CHUNK = 100  # rows per batch read/write (BatchGetItem and TransactWriteItems take at most 100 items)
REVIEW_CAP = 1000  # review items per run; beyond that one summary item points at the report

# Ledger accounts of a settled charge: the PSP pays net into the bank and keeps its fee.
BANK_CASH = "bank_cash"
PSP_FEE_EXPENSE = "psp_fee_expense"
PSP_RECEIVABLE = "psp_receivable"

ClaimState = Literal["settled", "awaiting", "missing"]


class ObjectRef(BaseModel):
    bucket: str
    key: str
    version: str | None = None
    etag: str | None = None


class Run(BaseModel):
    run_id: str
    source: ObjectRef
    status: Literal["RUNNING", "COMPLETED", "FAILED"] = "RUNNING"
    mode: Literal["stream", "distributed"] = "stream"
    error: str | None = None
    rows: int = 0
    matched: int = 0
    breaks: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(BREAK_CLASSES, 0))
    temporary_breaks: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(BREAK_CLASSES, 0))
    closed_temporary: int = 0  # temporary breaks of earlier runs this file settled
    settled_late: int = 0  # permanent missing_external breaks of earlier runs this file settled
    escalated: int = 0  # temporary breaks of earlier runs this file should have carried but did not
    settled_amounts: dict[str, int] = Field(default_factory=dict)  # gross settled per currency
    fees: dict[str, int] = Field(default_factory=dict)
    cutoff: str | None = None
    report: ObjectRef | None = None
    breaks_report: ObjectRef | None = None
    created_at: str
    completed_at: str | None = None


def run_id_for(source: ObjectRef) -> str:
    """One run per object content at a key: a redelivered notification, or the same file dropped twice
    (a new version with the same ETag), maps to the same run."""
    return deterministic_id("rr", source.bucket, source.key, source.etag or source.version or "")


class NotASettlementFile(ValueError):
    pass


class Row(NamedTuple):
    line: int
    psp_reference: str
    merchant_reference: str
    type: str
    amount: int
    currency: str
    fee: int
    net: int
    status: str
    created_at: datetime
    available_on: str


class Malformed(NamedTuple):
    line: int
    reason: str
    psp_reference: str = ""
    merchant_reference: str = ""


Parsed = Row | Malformed


def check_header(header: Sequence[str]) -> None:
    if tuple(h.strip() for h in header) != SETTLEMENT_COLUMNS:
        raise NotASettlementFile(
            "the header is not the settlement file header "
            f"({','.join(SETTLEMENT_COLUMNS)}); got {','.join(header)[:200]!r}"
        )


def _timestamp(value: str) -> datetime | None:
    if len(value) < 20 or value[10] != "T":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


fromisoformat = datetime.fromisoformat
CURRENCIES = frozenset(CURRENCY_EXPONENTS)
# `_new(Row, values)` builds a NamedTuple from a tuple without calling its Python-level __new__ (about
# 0.15 us less per object, in `rows_of`, which builds a Row per line of a block).
_new: Any = tuple.__new__


def parse_fields(line: int, fields: Sequence[str]) -> Parsed:
    """One data row, validated without pydantic (this runs a million times per file)."""
    if len(fields) != 10:
        return Malformed(line, f"expected 10 fields, found {len(fields)}")
    psp_reference, merchant_reference, kind, amount, currency, fee, net, status, created_at, available_on = fields
    if not psp_reference or not merchant_reference:
        return Malformed(line, "psp_reference and merchant_reference are required", psp_reference, merchant_reference)
    if kind not in ROW_TYPES:
        return Malformed(line, f"unknown type {kind[:20]!r}", psp_reference, merchant_reference)
    if currency not in CURRENCIES:
        return Malformed(line, f"unknown currency {currency[:10]!r}", psp_reference, merchant_reference)
    try:
        amount_minor, fee_minor, net_minor = int(amount), int(fee), int(net)
    except ValueError:
        return Malformed(line, "amount, fee and net must be integers in minor units", psp_reference, merchant_reference)
    if not 0 < amount_minor <= MAX_AMOUNT_MINOR or fee_minor < 0 or net_minor < 0:
        return Malformed(line, "amount out of range or negative fee/net", psp_reference, merchant_reference)
    if fee_minor + net_minor != amount_minor:
        return Malformed(line, f"fee {fee} + net {net} != amount {amount}", psp_reference, merchant_reference)
    try:
        created = fromisoformat(created_at)
    except ValueError:
        created = None
    if created is None or created.tzinfo is None:
        return Malformed(line, "created_at is not an ISO 8601 time with a zone", psp_reference, merchant_reference)
    return Row(
        line,
        psp_reference,
        merchant_reference,
        kind,
        amount_minor,
        currency,
        fee_minor,
        net_minor,
        status,
        created,
        available_on,
    )


def settlement_rows(lines: Iterable[str]) -> Iterator[Parsed]:
    """Each data row of the file, parsed, with its physical line number; the header must be the contract's.

    Settlement rows never span lines, so each line is its own record: a line without quotes is split on
    commas (fast), a quoted one goes through the csv module, and a broken one (an unclosed quote, a NUL)
    is one malformed row instead of swallowing the rest of the file.

    Lines are read `CHUNK` at a time; a block of plain, valid rows is parsed column by column
    (`parse_block`), any other line by line (`parse_lines`). Both give exactly what `parse_fields` gives
    for each line."""
    for number, block in settlement_blocks(lines):
        columns = parse_block(number, block)
        yield from parse_lines(number, block) if columns is None else rows_of(columns)


def settlement_blocks(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """The file's data lines, `CHUNK` at a time, each block with the line number of its first line,
    after checking the header (raises NotASettlementFile, lazily, like the iterator it is)."""
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None or not first.strip():
        raise NotASettlementFile("the file is empty")
    try:
        header = next(csv.reader([first.rstrip("\r\n")], strict=True))
    except csv.Error as error:
        raise NotASettlementFile(f"the header is not CSV: {error}") from None
    check_header(header)
    number = 2
    while block := list(islice(iterator, CHUNK)):
        yield number, block
        number += len(block)


def parse_lines(number: int, lines: Iterable[str]) -> Iterator[Parsed]:
    """Lines numbered from `number`, one by one: `parse_fields` of each line's fields (a blank line is
    not a row). The stream path comes here only for a block `parse_block` does not take whole."""
    for number, line in enumerate(lines, start=number):  # noqa: B020 - the running line number
        text = line.rstrip("\r\n")
        if not text:
            continue  # a blank line is not a row
        if '"' in text or "\x00" in text:
            try:
                fields = next(csv.reader([text], strict=True))
            except csv.Error as error:
                yield Malformed(number, f"not CSV: {error}")
                continue
        else:
            fields = text.split(",")
        yield parse_fields(number, fields)


# A block of valid rows as columns, in Row's field order: lines, psp_references, merchant_references, types,
# amounts, currencies, fees, nets, statuses, created_at, line ends (each a tuple, one value per row). The last
# column is each line's last field as split, line end included: `rows_of` strips it into available_on.
Columns = tuple[tuple[Any, ...], ...]


def parse_block(number: int, lines: Sequence[str]) -> Columns | None:
    """Lines numbered from `number` as the columns of their Rows, checked column by column in C loops
    (map, zip, min, count), without a line of Python per row; None unless every line is a plain row that
    `parse_fields` accepts (then `parse_lines` parses the block, and says what is wrong with which line).

    Accepted, each line has no quote or NUL and ten fields: `line.split(",")` is then
    `line.rstrip("\r\n").split(",")` but for the line end left on the last field (a line end holds no
    comma). The checks are `parse_fields`' checks, applied to every value of each column at once."""
    joined = "".join(lines)
    if '"' in joined or "\x00" in joined:
        return None  # a quoted or broken line: the csv module's
    try:
        # zip(strict=True) refuses lines of different lengths, the unpacking any length but ten
        psp_references, merchant_references, kinds, amounts, currencies, fees, nets, statuses, created_at, ends = zip(
            *map(str.split, lines, repeat(",")), strict=True
        )
    except ValueError:
        return None  # a blank line, or one with a wrong number of fields
    count = len(lines)
    if (
        "" in psp_references
        or "" in merchant_references
        # (counting equal values is cheaper than hashing each: the usual block is charges in one currency)
        or (kinds.count("charge") != count and not ROW_TYPES.issuperset(kinds))
        or (
            (currencies.count(currencies[0]) != count or currencies[0] not in CURRENCIES)
            and not CURRENCIES.issuperset(currencies)
        )
    ):
        return None
    try:
        amounts, fees, nets = tuple(map(int, amounts)), tuple(map(int, fees)), tuple(map(int, nets))
        created = tuple(map(fromisoformat, created_at))
    except ValueError:
        return None
    if (
        min(amounts) <= 0
        or max(amounts) > MAX_AMOUNT_MINOR
        or min(fees) < 0
        or min(nets) < 0
        or tuple(map(add, fees, nets)) != amounts
        # every time has a zone: at once when each ends in Z (no value holds a line end), else one by one
        or (("\n".join(created_at) + "\n").count("Z\n") != count and None in map(_tzinfo, created))
    ):
        return None
    return (
        tuple(range(number, number + count)),
        psp_references,
        merchant_references,
        kinds,
        amounts,
        currencies,
        fees,
        nets,
        statuses,
        created,
        ends,
    )


def rows_of(columns: Columns) -> list[Row]:
    *values, ends = columns
    return list(map(_new, repeat(Row), zip(*values, map(str.rstrip, ends, repeat("\r\n")), strict=True)))


_tzinfo = attrgetter("tzinfo")


# --- ports -------------------------------------------------------------------------------------------


class Order(NamedTuple):
    """What the executor recorded for one payment order."""

    payment_order_id: str
    status: str
    amount: int
    currency: str
    psp_reference: str | None
    decided_at: str | None
    seller_id: str = ""


class Claim(NamedTuple):
    """The settlement state of one order: settled by a row, or an open missing_external break."""

    payment_order_id: str
    state: ClaimState
    run_id: str
    line: int = 0
    psp_reference: str = ""
    decided_at: str = ""


class OrderSource(Protocol):
    def orders(self, payment_order_ids: Sequence[str]) -> list[Order | None]:
        """Each id's order (None if there is none), in the order asked."""

    def succeeded_between(self, start: datetime, end: datetime) -> Iterator[list[Order]]:
        """SUCCEEDED orders decided in [start, end], in pages of at most CHUNK."""


class ClaimBatch(NamedTuple):
    """Settlement claims to write, as columns: order `payment_order_ids[i]` settled by line `lines[i]` of
    run `run_id`, replacing `prior[i]` (the claim read before, None if it had none)."""

    run_id: str
    payment_order_ids: Sequence[str]
    lines: Sequence[int]
    psp_references: Sequence[str]
    decided_at: Sequence[str]
    prior: Sequence[Claim | None]

    def pairs(self) -> Iterator[tuple[Claim, Claim | None]]:
        """Each new claim with the one it replaces."""
        for payment_order_id, line, psp_reference, decided_at, prior in zip(
            self.payment_order_ids, self.lines, self.psp_references, self.decided_at, self.prior, strict=True
        ):
            yield Claim(payment_order_id, "settled", self.run_id, line, psp_reference, decided_at), prior


class ClaimStore(Protocol):
    def claims(self, payment_order_ids: Sequence[str]) -> dict[str, Claim]: ...

    def settle(self, batch: ClaimBatch) -> None:
        """Write each new claim only if the stored one is still the one read; raise if any changed."""

    def open_break(self, claim: Claim) -> None:
        """Record an awaiting or missing break for an order that has no claim (no-op if it has one)."""

    def awaiting_before(self, before: datetime) -> Iterator[Claim]: ...

    def escalate(self, claim: Claim, run_id: str) -> bool:
        """awaiting -> missing, escalated by `run_id`; False if it is no longer awaiting."""

    def escalated_by(self, run_id: str) -> Iterator[Claim]:
        """The claims `run_id` escalated that are still missing (a retried run finds its own)."""


class PostingSink(Protocol):
    def post(self, journals: Sequence[JournalPosting]) -> None:
        """Send each to the ledger, which books each journal once."""


# --- classification ----------------------------------------------------------------------------------


class Outcome(NamedTuple):
    line: int
    klass: str | None  # None: matched
    temporary: bool
    psp_reference: str
    merchant_reference: str
    created_at: datetime | None
    detail: str = ""
    closed: str = ""  # "temporary" | "permanent" when this row settled an earlier run's break
    amount: int = 0
    fee: int = 0
    currency: str = ""


def settlement_journal(run_id: str, first_line: int, currency: str, gross: int, fees: int) -> JournalPosting:
    """The PSP paid the matched rows of one group of lines net into the bank and kept its fees: together
    they clear those orders' receivable. The journal id derives from the run, the group's first line and
    the currency; a group is a fixed set of the file's lines (see `classify_chunk`), so a retried or
    redelivered run books nothing twice."""
    lines = [PostingLine(account=BANK_CASH, direction="debit", amount=gross - fees)]
    if fees:
        lines.append(PostingLine(account=PSP_FEE_EXPENSE, direction="debit", amount=fees))
    lines.append(PostingLine(account=PSP_RECEIVABLE, direction="credit", amount=gross))
    return JournalPosting(
        kind="settlement",
        business_id=f"{run_id}:{first_line}:{currency}",
        currency=currency,
        lines=lines,
        reference=run_id,
    )


@dataclass
class ChunkResult:
    """A chunk's rows: matched ones folded into sums, every other row an Outcome (in line order)."""

    rows: int = 0
    matched: int = 0
    settled_amounts: dict[str, int] = field(default_factory=dict)
    fees: dict[str, int] = field(default_factory=dict)
    closed_temporary: int = 0
    settled_late: int = 0
    first_created: datetime | None = None
    last_created: datetime | None = None
    outcomes: list[Outcome] = field(default_factory=list)  # breaks (and matched rows when kept)


def classify_chunk(
    run_id: str,
    items: Sequence[Parsed],
    *,
    orders: OrderSource,
    claims: ClaimStore,
    postings: PostingSink,
    per_row: bool = False,
) -> ChunkResult:
    """Classify one chunk of rows (in line order), claim the rows that belong to an order, post the
    matched ones. Safe to repeat: a row's own earlier claim (same run and line) is not a duplicate.

    The stream path's chunks are fixed by the file (`CHUNK` rows from a given line), so a chunk's matched
    rows are booked as one journal per currency. `per_row` is for rows that arrive in batches of any
    make-up (the distributed path): each matched row is then its own journal, and kept as an outcome."""
    rows = [i for i in items if type(i) is Row]
    columns = tuple(zip(*rows, strict=True))
    return _classify(run_id, items, columns, orders=orders, claims=claims, postings=postings, per_row=per_row)


def classify_columns(
    run_id: str, columns: Columns, *, orders: OrderSource, claims: ClaimStore, postings: PostingSink
) -> ChunkResult:
    """`classify_chunk` of a chunk of valid rows given as columns (`parse_block`'s), without their Rows."""
    return _classify(run_id, None, columns, orders=orders, claims=claims, postings=postings, per_row=False)


def _classify(
    run_id: str,
    items: Sequence[Parsed] | None,
    columns: Columns,
    *,
    orders: OrderSource,
    claims: ClaimStore,
    postings: PostingSink,
    per_row: bool,
) -> ChunkResult:
    """`columns` are the chunk's Rows' (none if it has no Row); `items` the chunk, None if all are Rows."""
    count = len(columns[0]) if columns else 0
    if not columns:
        references: list[str] = []
    elif columns[3].count("charge") == count:
        references = list(dict.fromkeys(columns[2]))
    else:
        references = list(
            dict.fromkeys([r for r, kind in zip(columns[2], columns[3], strict=True) if kind == "charge"])
        )
    found = orders.orders(references) if references else []
    claimable = [r for r, o in zip(references, found, strict=True) if o is not None] if None in found else references
    stored = claims.claims(claimable) if claimable else {}
    result = ChunkResult(rows=count if items is None else len(items))
    if columns:
        result.first_created = min(columns[9])
        result.last_created = max(columns[9])
    batch = None
    if columns and not stored and not per_row and count == result.rows == len(claimable):
        # every row a charge of its own known order, none claimed yet, in row order: `found` is theirs
        batch = all_matched(run_id, columns, cast("list[Order]", found))
    if batch is None:
        known = {r: o for r, o in zip(references, found, strict=True) if o is not None}
        batch = _classify_rows(run_id, rows_of(columns) if items is None else items, known, stored, result, per_row)
    else:
        result.matched = count
        _add_by_currency(result, columns[5], columns[4], columns[6])
    if batch.lines:
        claims.settle(batch)
    if per_row:
        journals = [
            settlement_journal(run_id, o.line, o.currency, o.amount, o.fee) for o in result.outcomes if o.klass is None
        ]
    else:
        first_line = columns[0][0] if items is None else items[0].line
        journals = [
            settlement_journal(run_id, first_line, currency, gross, result.fees[currency])
            for currency, gross in result.settled_amounts.items()
        ]
    if journals:
        postings.post(journals)
    return result


def all_matched(run_id: str, columns: Columns, found: Sequence[Order]) -> ClaimBatch | None:
    """The common chunk, classified column by column in C loops: its claims if every row matches its
    order, else None (then `_classify_rows` classifies it row by row).

    `columns` are the chunk's Rows', each a charge of its own known order, `found[i]` being row i's, and
    none of the orders has a claim yet. Every row then matches - exactly what `_classify_rows` would
    find - when it has its order's PSP reference, currency and amount, settled by the PSP and succeeded
    for us."""
    lines, psp_references, references, _, amounts, currencies, _, _, statuses = columns[:9]
    count = len(lines)
    if statuses.count(SETTLED_STATUS) != count:
        return None
    _, order_statuses, order_amounts, order_currencies, order_psp_references, decided_at, _ = zip(*found, strict=True)
    if (
        order_psp_references != psp_references
        or order_currencies != currencies
        or order_amounts != amounts
        or order_statuses.count("SUCCEEDED") != count
    ):
        return None
    if None in decided_at:
        decided_at = tuple(d or "" for d in decided_at)
    return ClaimBatch(run_id, references, lines, psp_references, decided_at, (None,) * count)


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
    known: dict[str, Order],
    stored: dict[str, Claim],
    result: ChunkResult,
    keep_matched: bool,
) -> ClaimBatch:
    """Each item of a chunk in line order: breaks (and matched rows if kept) into `result.outcomes`,
    matched rows into its sums; returns the claims to write."""
    outcomes = result.outcomes
    amounts, fees = result.settled_amounts, result.fees
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
        order = known.get(reference) if row.type == "charge" else None
        if order is None or (order.psp_reference is not None and order.psp_reference != row.psp_reference):
            detail = (
                f"no internal record of this {row.type}"
                if order is None
                else f"order {reference} was charged as {order.psp_reference}"
            )
            outcomes.append(
                Outcome(row.line, "missing_internal", False, row.psp_reference, reference, row.created_at, detail)
            )
            continue
        earlier = first_line.get(reference)
        claim = stored.get(reference)
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
        first_line[reference] = row.line
        closed = ""
        if claim is not None and claim.state != "settled":
            closed = "temporary" if claim.state == "awaiting" else "permanent"
            if closed == "temporary":
                result.closed_temporary += 1
            else:
                result.settled_late += 1
        claim_order.append(reference)
        claim_line.append(row.line)
        claim_psp.append(row.psp_reference)
        claim_decided.append(order.decided_at or "")
        claim_prior.append(claim)
        if row.currency != order.currency:
            klass, detail = "currency_mismatch", f"file {row.currency}, order {order.currency}"
        elif row.amount != order.amount:
            klass, detail = "amount_mismatch", f"file {row.amount}, order {order.amount} {order.currency}"
        elif row.status != SETTLED_STATUS or order.status != "SUCCEEDED":
            klass, detail = "status_mismatch", f"file {row.status}, order {order.status}"
        else:
            result.matched += 1
            currency = row.currency
            amounts[currency] = amounts.get(currency, 0) + row.amount
            fees[currency] = fees.get(currency, 0) + row.fee
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
                        row.amount,
                        row.fee,
                        currency,
                    )
                )
            continue
        outcomes.append(Outcome(row.line, klass, False, row.psp_reference, reference, row.created_at, detail, closed))
    return ClaimBatch(run_id, claim_order, claim_line, claim_psp, claim_decided, claim_prior)


def chunked(items: Iterable[Parsed], size: int = CHUNK) -> Iterator[list[Parsed]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# --- the run's tally ---------------------------------------------------------------------------------

BREAKS_CSV_COLUMNS = ("class", "temporary", "line", "psp_reference", "merchant_reference", "detail")


class ReviewItem(BaseModel):
    """A break a person has to look at (sent to the review queue)."""

    run_id: str
    break_class: str
    line: int | None
    psp_reference: str
    merchant_reference: str
    detail: str
    report_key: str | None = None


@dataclass
class Tally:
    run_id: str
    rows: int = 0
    matched: int = 0
    breaks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BREAK_CLASSES, 0))
    temporary: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BREAK_CLASSES, 0))
    closed_temporary: int = 0
    settled_late: int = 0
    escalated: int = 0
    settled_amounts: dict[str, int] = field(default_factory=dict)
    fees: dict[str, int] = field(default_factory=dict)
    first_created: datetime | None = None
    cutoff: datetime | None = None
    review: list[ReviewItem] = field(default_factory=list)
    review_overflow: int = 0
    spool: IO[str] = field(default_factory=lambda: tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+"))  # noqa: SIM115

    def __post_init__(self) -> None:
        self._csv = csv.writer(self.spool)
        self._csv.writerow(BREAKS_CSV_COLUMNS)

    def merge(self, chunk: ChunkResult) -> None:
        """A chunk of the stream path: matched rows arrive as sums, every other row as an outcome."""
        self.rows += chunk.rows
        self.matched += chunk.matched
        self.closed_temporary += chunk.closed_temporary
        self.settled_late += chunk.settled_late
        for currency, amount in chunk.settled_amounts.items():
            self.settled_amounts[currency] = self.settled_amounts.get(currency, 0) + amount
        for currency, fee in chunk.fees.items():
            self.fees[currency] = self.fees.get(currency, 0) + fee
        if chunk.first_created is not None and (self.first_created is None or chunk.first_created < self.first_created):
            self.first_created = chunk.first_created
        if chunk.last_created is not None and (self.cutoff is None or chunk.last_created > self.cutoff):
            self.cutoff = chunk.last_created
        for o in chunk.outcomes:
            if o.klass is not None:
                self.add_break(o.klass, o.line, o.psp_reference, o.merchant_reference, o.detail, temporary=o.temporary)

    def add(self, outcome: Outcome) -> None:
        self.rows += 1
        created = outcome.created_at
        if created is not None:
            if self.cutoff is None or created > self.cutoff:
                self.cutoff = created
            if self.first_created is None or created < self.first_created:
                self.first_created = created
        if outcome.closed == "temporary":
            self.closed_temporary += 1
        elif outcome.closed == "permanent":
            self.settled_late += 1
        if outcome.klass is None:
            self.matched += 1
            self.settled_amounts[outcome.currency] = self.settled_amounts.get(outcome.currency, 0) + outcome.amount
            self.fees[outcome.currency] = self.fees.get(outcome.currency, 0) + outcome.fee
            return
        self.add_break(
            outcome.klass,
            outcome.line,
            outcome.psp_reference,
            outcome.merchant_reference,
            outcome.detail,
            temporary=outcome.temporary,
        )

    def add_break(
        self,
        klass: str,
        line: int | None,
        psp_reference: str,
        merchant_reference: str,
        detail: str,
        *,
        temporary: bool = False,
    ) -> None:
        (self.temporary if temporary else self.breaks)[klass] += 1
        self._csv.writerow(
            (klass, "true" if temporary else "false", line or "", psp_reference, merchant_reference, detail)
        )
        if temporary:
            return  # re-checked automatically by the next file
        if len(self.review) < REVIEW_CAP:
            self.review.append(
                ReviewItem(
                    run_id=self.run_id,
                    break_class=klass,
                    line=line,
                    psp_reference=psp_reference,
                    merchant_reference=merchant_reference,
                    detail=detail,
                )
            )
        else:
            self.review_overflow += 1

    def breaks_csv(self) -> IO[bytes]:
        """The breaks CSV as a binary stream for upload (spooled to disk beyond 1 MiB)."""
        self.spool.flush()
        self.spool.seek(0)
        return io.BufferedReader(_Utf8Reader(self.spool))


class _Utf8Reader(io.RawIOBase):
    def __init__(self, text: IO[str]) -> None:
        self.text = text
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while len(self.pending) < len(buffer):
            chunk = self.text.read(1 << 16)
            if not chunk:
                break
            self.pending += chunk.encode()
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


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
                f"decided {order.decided_at}, after the file's cut-off {cutoff.isoformat()}: expected in the next file"
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


def complete_run(run: Run, tally: Tally, *, completed_at: str) -> Run:
    return run.model_copy(
        update={
            "status": "COMPLETED",
            "rows": tally.rows,
            "matched": tally.matched,
            "breaks": dict(tally.breaks),
            "temporary_breaks": dict(tally.temporary),
            "closed_temporary": tally.closed_temporary,
            "settled_late": tally.settled_late,
            "escalated": tally.escalated,
            "settled_amounts": dict(tally.settled_amounts),
            "fees": dict(tally.fees),
            "cutoff": tally.cutoff.isoformat() if tally.cutoff else None,
            "completed_at": completed_at,
        }
    )


def reconcile_rows(
    run: Run, items: Iterable[Parsed], *, orders: OrderSource, claims: ClaimStore, postings: PostingSink
) -> Tally:
    """Every row of the file in one pass (the stream path); `find_missing` completes the tally."""
    tally = Tally(run.run_id)
    for chunk in chunked(items):
        tally.merge(classify_chunk(run.run_id, chunk, orders=orders, claims=claims, postings=postings))
    return tally


def reconcile_lines(
    run: Run, lines: Iterable[str], *, orders: OrderSource, claims: ClaimStore, postings: PostingSink
) -> Tally:
    """`reconcile_rows(run, settlement_rows(lines), ...)` - the same chunks, outcomes and port calls - the
    stream path the function runs: a block of `CHUNK` plain valid lines is classified as columns, without
    a Row per line; rows of any other block wait in `pending` to be classified in chunks of `CHUNK`."""
    tally = Tally(run.run_id)
    pending: list[Parsed] = []
    for number, block in settlement_blocks(lines):
        columns = parse_block(number, block)
        if columns is not None and not pending:
            # the block's rows are the next chunk: CHUNK of them, or the file's last ones
            tally.merge(classify_columns(run.run_id, columns, orders=orders, claims=claims, postings=postings))
            continue
        pending.extend(parse_lines(number, block) if columns is None else rows_of(columns))
        while len(pending) >= CHUNK:
            chunk, pending = pending[:CHUNK], pending[CHUNK:]
            tally.merge(classify_chunk(run.run_id, chunk, orders=orders, claims=claims, postings=postings))
    if pending:
        tally.merge(classify_chunk(run.run_id, pending, orders=orders, claims=claims, postings=postings))
    return tally


class RunStore(Protocol):
    def get(self, run_id: str) -> Run | None: ...

    def put(self, run: Run) -> None: ...

    def list_runs(self, limit: int) -> list[Run]: ...
