"""The PSP's settlement file: its header, its rows, and how its lines are parsed and validated.

The file is read `CHUNK` lines at a time (`settlement_blocks`). A block of plain, valid rows is parsed
column by column (`parse_block`), any other block line by line (`parse_lines`). Both give exactly what
`parse_fields` gives for each line (tests/unit/test_reconciliation_fast_path.py checks it).

Directions: `charge` and `dispute_reversal` rows bring money in (net = amount - fee), `refund`, `payout`
and `dispute` rows take it out (net = amount + fee: the whole of it left our balance at the PSP). The
file ends with one `summary` row per currency whose amount, fee and net are the signed sums of that
currency's rows (closing_balance.py checks them before anything is booked)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import islice, repeat
from operator import add, attrgetter
from typing import Any, NamedTuple

from functions.common.money import CURRENCY_EXPONENTS, MAX_AMOUNT_BY_CURRENCY, MAX_AMOUNT_MINOR
from functions.reconciliation.models import CHUNK

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
ROW_TYPES = frozenset({"charge", "refund", "payout", "dispute", "dispute_reversal"})
INCOMING_TYPES = frozenset({"charge", "dispute_reversal"})  # the others are money out
SUMMARY_TYPE = "summary"
CURRENCIES = frozenset(CURRENCY_EXPONENTS)


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


class Summary(NamedTuple):
    """A currency's closing line: the signed sums (money in positive) of that currency's rows."""

    line: int
    period: str  # the file's day (or period), as the PSP names it
    currency: str
    amount: int
    fee: int
    net: int


Parsed = Row | Malformed | Summary


def signed_net(kind: str, net: int) -> int:
    """What a row of `kind` moved into (positive) or out of (negative) our balance at the PSP."""
    return net if kind in INCOMING_TYPES else -net


def _net_is_right(kind: str, amount: int, fee: int, net: int) -> bool:
    return fee + net == amount if kind in INCOMING_TYPES else net == amount + fee


class Columns(NamedTuple):
    """Valid rows as columns, in Row's field order: one tuple per field, one value per row."""

    lines: tuple[int, ...]
    psp_references: tuple[str, ...]
    merchant_references: tuple[str, ...]
    types: tuple[str, ...]
    amounts: tuple[int, ...]
    currencies: tuple[str, ...]
    fees: tuple[int, ...]
    nets: tuple[int, ...]
    statuses: tuple[str, ...]
    created_at: tuple[datetime, ...]
    # Each line's last field as `parse_block` split it, line end still on: `rows_of` strips it into
    # available_on (only when Rows are needed, which the common chunk never does).
    available_on_raw: tuple[str, ...]


fromisoformat = datetime.fromisoformat
# `_new(Row, values)` builds a NamedTuple from a tuple without calling its Python-level __new__ (about
# 0.15 us less per object, in `rows_of`, which builds a Row per line of a block).
_new: Any = tuple.__new__
_tzinfo = attrgetter("tzinfo")


def check_header(header: Sequence[str]) -> None:
    if tuple(h.strip() for h in header) != SETTLEMENT_COLUMNS:
        raise NotASettlementFile(
            "the header is not the settlement file header "
            f"({','.join(SETTLEMENT_COLUMNS)}); got {','.join(header)[:200]!r}"
        )


def parse_fields(line: int, fields: Sequence[str]) -> Parsed:
    """One data row, validated without pydantic (this runs a million times per file)."""
    if len(fields) != 10:
        return Malformed(line, f"expected 10 fields, found {len(fields)}")
    psp_reference, merchant_reference, kind, amount, currency, fee, net, status, created_at, available_on = fields
    if kind == SUMMARY_TYPE:
        return _summary(line, fields)
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
    if not 0 < amount_minor <= MAX_AMOUNT_BY_CURRENCY[currency] or fee_minor < 0 or net_minor < 0:
        return Malformed(line, "amount out of range or negative fee/net", psp_reference, merchant_reference)
    if not _net_is_right(kind, amount_minor, fee_minor, net_minor):
        rule = f"fee {fee} + net {net} != amount {amount}" if kind in INCOMING_TYPES else f"net {net} != amount + fee"
        return Malformed(line, rule, psp_reference, merchant_reference)
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


def _summary(line: int, fields: Sequence[str]) -> Summary | Malformed:
    _, period, _, amount, currency, fee, net, *_ = fields
    if currency not in CURRENCIES:
        return Malformed(line, f"summary of unknown currency {currency[:10]!r}", "", period)
    try:
        amount_minor, fee_minor, net_minor = int(amount), int(fee), int(net)
    except ValueError:
        return Malformed(line, "summary amount, fee and net must be integers in minor units", "", period)
    if fee_minor < 0 or amount_minor - fee_minor != net_minor:
        return Malformed(line, f"summary net {net} != amount {amount} - fee {fee}", "", period)
    return Summary(line, period, currency, amount_minor, fee_minor, net_minor)


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
    not a row).

    Settlement rows never span lines, so each line is its own record: a line without quotes is split on
    commas (fast), a quoted one goes through the csv module, and a broken one (an unclosed quote, a NUL)
    is one malformed row instead of swallowing the rest of the file."""
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
        # (above eight digits, each amount against its own currency's maximum)
        or (
            max(amounts) > MAX_AMOUNT_MINOR
            and any(map(int.__gt__, amounts, map(MAX_AMOUNT_BY_CURRENCY.__getitem__, currencies)))
        )
        or min(fees) < 0
        or min(nets) < 0
        or (
            tuple(map(add, fees, nets)) != amounts
            if kinds.count("charge") == count
            else not all(map(_net_is_right, kinds, amounts, fees, nets))
        )
        # every time has a zone: at once when each ends in Z (no value holds a line end), else one by one
        or (("\n".join(created_at) + "\n").count("Z\n") != count and None in map(_tzinfo, created))
    ):
        return None
    return Columns(
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


def columns_of(rows: Sequence[Row]) -> Columns | None:
    """The rows as columns (None if there are none): `rows_of` the other way round."""
    return Columns._make(zip(*rows, strict=True)) if rows else None
