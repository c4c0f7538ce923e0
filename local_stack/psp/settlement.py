"""The simulated PSP's settlement file: one row per movement of the merchant's balance it made in a day
(or any [since, until) period) - charges it paid out, refunds it paid, disputes (amount and fee taken)
and won disputes' reversals - with fee and net, closed by one summary row per currency (the signed sums:
money in positive), and differences injected on request.

GET /v1/settlements?date=YYYY-MM-DD            the day's file (UTC)
                   &since=ISO&until=ISO         or any period (until exclusive)
                   &missing=<merchant_ref>      drop that row
                   &amount=<merchant_ref>       change its amount (+100) and net
                   &currency=<merchant_ref>     change its currency
                   &status=<merchant_ref>       write its status as failed
                   &duplicate=<merchant_ref>    write its row twice
                   &late=<merchant_ref>         book it just after the cut-off: it moves to the next file
                   &extra=N                     N rows for charges we never made
                   &malformed=N                 N lines that are not settlement rows
                   &truncate=N                  lose the last N rows (the summary still counts them)
-> {"filename", "rows", "csv"}

merchant_reference is the merchant's id of each movement: the payment order (charge) or refund id it
sent, and for a dispute the id the merchant's disputes service gives it (derived from the PSP's dispute
id, functions/disputes).

The payout provider's file (local_stack/payout_provider/settlement.py) is built by the same code from its
own movements, with the same query and injections."""

from __future__ import annotations

import csv
import io
import re
import threading
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from functions.common.ids import deterministic_id
from functions.reconciliation.settlement_file import INCOMING_TYPES, SETTLEMENT_COLUMNS
from local_stack.psp.charges import Charge, Reply

if TYPE_CHECKING:
    from local_stack.psp.simulator import PspSimulator

COLUMNS = SETTLEMENT_COLUMNS  # the contract's header, as the reconciler checks it
EXPONENTS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "UGX": 0, "VND": 0, "XAF": 0, "XOF": 0}
EXPONENTS.update(dict.fromkeys(("BHD", "JOD", "KWD", "OMR", "TND"), 3))
PAYOUT_DELAY = timedelta(days=2)


def fee_for(amount: int, currency: str) -> int:
    """2.9% + 30 cents (scaled to the currency's exponent), never the whole amount."""
    exponent = EXPONENTS.get(currency, 2)
    fixed = 30 * 10 ** (exponent - 2) if exponent >= 2 else 0
    return min(amount - 1, (amount * 29 + 500) // 1000 + fixed) if amount > 1 else 0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def settled_time(charge: Charge) -> datetime:
    """When the PSP booked the charge: when it succeeded (a pending charge later), else its creation."""
    value = getattr(charge, "succeeded_at", None) or charge.created_at
    return _parse(str(value))


@dataclass(frozen=True)
class Movement:
    """One movement of the merchant's balance: a row of the file of the day it happened."""

    moment: datetime
    psp_reference: str
    merchant_reference: str
    type: str
    amount: int
    currency: str
    fee: int | None  # None: the PSP's pricing for charges (fee_for), on the amount as written
    status: str


def _from_epoch(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)


def movements(sim: PspSimulator) -> list[Movement]:
    """Every movement the simulator made: succeeded charges, succeeded refunds, and the disputes' movements
    (when the simulator keeps disputes). Payouts are the payout provider's, in its own file."""
    found = [
        Movement(settled_time(c), c.id, c.merchant_reference, "charge", c.amount, c.currency, None, "succeeded")
        for c in sim.charges.all()
        if c.status == "succeeded" and c.object == "charge"
    ]
    for refund in sim.refunds.find():
        if refund.status == "succeeded":
            created_at = getattr(refund, "created_at", None)
            moment = _parse(str(created_at)) if created_at else _from_epoch(refund.created)
            reference = getattr(refund, "merchant_reference", None) or refund.idempotency_key
            found.append(
                Movement(moment, refund.id, reference, "refund", refund.amount, refund.currency, 0, "succeeded")
            )
    disputes = getattr(sim, "disputes", None)
    for move in list(getattr(disputes, "movements", ())):
        reference = deterministic_id("dp", move.dispute_id)
        found.append(
            Movement(
                _parse(move.created_at),
                move.dispute_id,
                reference,
                move.type,
                move.amount,
                move.currency,
                move.fee,
                "succeeded",
            )
        )
    return found


@dataclass
class Injections:
    missing: set[str] = field(default_factory=set)
    amount: set[str] = field(default_factory=set)
    currency: set[str] = field(default_factory=set)
    status: set[str] = field(default_factory=set)
    duplicate: set[str] = field(default_factory=set)
    late: set[str] = field(default_factory=set)
    extra: int = 0
    malformed: int = 0
    truncate: int = 0

    @classmethod
    def from_query(cls, query: dict[str, list[str]]) -> Injections:
        def refs(name: str) -> set[str]:
            return {r for value in query.get(name, []) for r in value.split(",") if r}

        return cls(
            missing=refs("missing"),
            amount=refs("amount"),
            currency=refs("currency"),
            status=refs("status"),
            duplicate=refs("duplicate"),
            late=refs("late"),
            extra=int(query.get("extra", ["0"])[-1]),
            malformed=int(query.get("malformed", ["0"])[-1]),
            truncate=int(query.get("truncate", ["0"])[-1]),
        )


def _row(move: Movement, moment: datetime, inject: Injections) -> list[str]:
    amount, currency, status = move.amount, move.currency, move.status
    reference = move.merchant_reference
    if reference in inject.amount:
        amount += 100
    if reference in inject.currency:
        currency = "EUR" if currency != "EUR" else "USD"
    if reference in inject.status:
        status = "failed"
    fee = fee_for(amount, currency) if move.fee is None else move.fee
    net = amount - fee if move.type in INCOMING_TYPES else amount + fee
    return [
        move.psp_reference,
        reference,
        move.type,
        str(amount),
        currency,
        str(fee),
        str(net),
        status,
        _iso(moment),
        (moment + PAYOUT_DELAY).date().isoformat(),
    ]


def summary_rows(rows: list[list[str]], *, period: str, closing: datetime) -> list[list[str]]:
    """One summary row per currency: the signed sums of its rows' amount, fee and net (money in positive);
    a file without rows still has one (USD, zeros), so that an empty day is not a truncated file."""
    totals: dict[str, list[int]] = {}
    for row in rows:
        sign = 1 if row[2] in INCOMING_TYPES else -1
        amount_fee_net = totals.setdefault(row[4], [0, 0, 0])
        amount_fee_net[0] += sign * int(row[3])
        amount_fee_net[1] += int(row[5])
        amount_fee_net[2] += sign * int(row[6])
    if not totals:
        totals["USD"] = [0, 0, 0]
    return [
        ["summary", period, "summary", str(a), currency, str(f), str(n), "closing", _iso(closing), ""]
        for currency, (a, f, n) in sorted(totals.items())
    ]


# An injected row for a movement the merchant never made, given the time of the file's last row.
ExtraRow = Callable[[str], list[str]]


def unknown_charge_row(last: str) -> list[str]:
    """A charge the merchant never made (extra=N in the PSP's file)."""
    amount = 4200
    fee = fee_for(amount, "USD")
    return [
        f"ch_{uuid.uuid4().hex[:24]}",
        f"po_unknown_{uuid.uuid4().hex[:8]}",
        "charge",
        str(amount),
        "USD",
        str(fee),
        str(amount - fee),
        "succeeded",
        last,
        (_parse(last) + PAYOUT_DELAY).date().isoformat(),
    ]


class SettlementBook:
    """Remembers movements booked after a cut-off, so they land in the next file."""

    def __init__(self) -> None:
        self.booked_late: dict[tuple[str, str], datetime] = {}  # (type, psp reference) -> its new booking time
        self.lock = threading.Lock()

    def settlement_file(
        self,
        moves: list[Movement],
        *,
        since: datetime,
        until: datetime,
        inject: Injections,
        period: str,
        extra_row: ExtraRow = unknown_charge_row,
    ) -> tuple[str, int]:
        with self.lock:
            for move in moves:
                key = (move.type, move.psp_reference)
                if move.merchant_reference in inject.late and key not in self.booked_late:
                    self.booked_late[key] = until  # just after this file's cut-off
            booked = [(self.booked_late.get((m.type, m.psp_reference), m.moment), m) for m in moves]
        rows: list[list[str]] = []
        for moment, move in sorted(booked, key=lambda item: (item[0], item[1].psp_reference, item[1].type)):
            if not since <= moment < until or move.merchant_reference in inject.missing:
                continue
            row = _row(move, moment, inject)
            rows.append(row)
            if move.merchant_reference in inject.duplicate:
                rows.append(list(row))
        last = rows[-1][8] if rows else _iso(since)
        rows.extend(extra_row(last) for _ in range(inject.extra))
        summaries = summary_rows(rows, period=period, closing=until)
        if inject.truncate:
            rows = rows[: max(0, len(rows) - inject.truncate)]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        for index in range(inject.malformed):
            out.write(f"ch_broken_{index},po_broken_{index},charge,12.50,USD\n")
        writer.writerows(summaries)
        return out.getvalue(), len(rows) + inject.malformed


_BOOKS: weakref.WeakKeyDictionary[Any, SettlementBook] = weakref.WeakKeyDictionary()
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def book_of(sim: object) -> SettlementBook:
    return _BOOKS.setdefault(sim, SettlementBook())


def _bad(message: str) -> Reply:
    return Reply(400, {"error": {"type": "invalid_request_error", "code": "parameter_invalid", "message": message}})


def settlement_reply(
    moves: list[Movement],
    book: SettlementBook,
    query: dict[str, list[str]],
    *,
    name_prefix: str,
    extra_row: ExtraRow = unknown_charge_row,
) -> Reply:
    """The settlement file of the queried day or period, with the queried injections."""
    day = query.get("date", [None])[-1]
    try:
        if day is not None:
            if not _DATE.match(day):
                return _bad("date must be YYYY-MM-DD.")
            since = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)
            until = since + timedelta(days=1)
        else:
            since = _parse(query["since"][-1]) if "since" in query else datetime(1970, 1, 1, tzinfo=UTC)
            until = _parse(query["until"][-1]) if "until" in query else datetime.now(UTC)
        inject = Injections.from_query(query)
    except (ValueError, KeyError) as error:
        return _bad(f"invalid settlement query: {error}")
    period = day or f"{_iso(since)}/{_iso(until)}"
    text, rows = book.settlement_file(
        moves, since=since, until=until, inject=inject, period=period, extra_row=extra_row
    )
    name = f"{name_prefix}-{day}.csv" if day else f"{name_prefix}-{until.strftime('%Y%m%dT%H%M%S%fZ')}.csv"
    return Reply(200, {"object": "settlement_file", "filename": name, "rows": rows, "csv": text})


def settlement_route(sim: PspSimulator, _: re.Match[str], query: dict[str, list[str]], *__: Any) -> Reply:
    return settlement_reply(movements(sim), book_of(sim), query, name_prefix="psp-settlement")
