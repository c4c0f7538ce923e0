"""The simulated PSP's settlement file: one row per charge it actually paid out, with its fee and net,
for a day (or any [since, until) period), and differences injected on request.

GET /v1/settlements?date=YYYY-MM-DD            the day's file (UTC)
                   &since=ISO&until=ISO         or any period (until exclusive)
                   &missing=<merchant_ref>      drop that charge's row
                   &amount=<merchant_ref>       change its amount (+100) and net
                   &currency=<merchant_ref>     change its currency
                   &duplicate=<merchant_ref>    write its row twice
                   &late=<merchant_ref>         book it just after the cut-off: it moves to the next file
                   &extra=N                     N rows for charges we never made
                   &malformed=N                 N lines that are not settlement rows
-> {"filename", "rows", "csv"}"""

from __future__ import annotations

import csv
import io
import re
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from functions.reconciliation.settlement_file import SETTLEMENT_COLUMNS
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


@dataclass
class Injections:
    missing: set[str] = field(default_factory=set)
    amount: set[str] = field(default_factory=set)
    currency: set[str] = field(default_factory=set)
    duplicate: set[str] = field(default_factory=set)
    late: set[str] = field(default_factory=set)
    extra: int = 0
    malformed: int = 0

    @classmethod
    def from_query(cls, query: dict[str, list[str]]) -> Injections:
        def refs(name: str) -> set[str]:
            return {r for value in query.get(name, []) for r in value.split(",") if r}

        return cls(
            missing=refs("missing"),
            amount=refs("amount"),
            currency=refs("currency"),
            duplicate=refs("duplicate"),
            late=refs("late"),
            extra=int(query.get("extra", ["0"])[-1]),
            malformed=int(query.get("malformed", ["0"])[-1]),
        )


class SettlementBook:
    """Remembers charges booked after a cut-off, so they land in the next file."""

    def __init__(self) -> None:
        self.booked_late: dict[str, datetime] = {}  # charge id -> its new booking time
        self.lock = threading.Lock()

    def settlement_file(
        self, charges: list[Charge], *, since: datetime, until: datetime, inject: Injections
    ) -> tuple[str, int]:
        with self.lock:
            for charge in charges:
                if charge.merchant_reference in inject.late and charge.id not in self.booked_late:
                    self.booked_late[charge.id] = until  # just after this file's cut-off
            booked = [
                (self.booked_late.get(c.id, settled_time(c)), c)
                for c in charges
                if c.status == "succeeded" and c.object == "charge"
            ]
        rows: list[list[str]] = []
        for moment, charge in sorted(booked, key=lambda item: (item[0], item[1].id)):
            if not since <= moment < until or charge.merchant_reference in inject.missing:
                continue
            amount, currency = charge.amount, charge.currency
            if charge.merchant_reference in inject.amount:
                amount += 100
            if charge.merchant_reference in inject.currency:
                currency = "EUR" if currency != "EUR" else "USD"
            fee = fee_for(amount, currency)
            row = [
                charge.id,
                charge.merchant_reference,
                "charge",
                str(amount),
                currency,
                str(fee),
                str(amount - fee),
                "succeeded",
                _iso(moment),
                (moment + PAYOUT_DELAY).date().isoformat(),
            ]
            rows.append(row)
            if charge.merchant_reference in inject.duplicate:
                rows.append(list(row))
        last = rows[-1][8] if rows else _iso(since)
        for _ in range(inject.extra):
            amount = 4200
            fee = fee_for(amount, "USD")
            rows.append(
                [
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
            )
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        for index in range(inject.malformed):
            out.write(f"ch_broken_{index},po_broken_{index},charge,12.50,USD\n")
        return out.getvalue(), len(rows) + inject.malformed


_BOOKS: weakref.WeakKeyDictionary[Any, SettlementBook] = weakref.WeakKeyDictionary()
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def book_of(sim: PspSimulator) -> SettlementBook:
    return _BOOKS.setdefault(sim, SettlementBook())


def _bad(message: str) -> Reply:
    return Reply(400, {"error": {"type": "invalid_request_error", "code": "parameter_invalid", "message": message}})


def settlement_route(sim: PspSimulator, _: re.Match[str], query: dict[str, list[str]], *__: Any) -> Reply:
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
    text, rows = book_of(sim).settlement_file(sim.charges.all(), since=since, until=until, inject=inject)
    name = f"psp-settlement-{day}.csv" if day else f"psp-settlement-{until.strftime('%Y%m%dT%H%M%S%fZ')}.csv"
    return Reply(200, {"object": "settlement_file", "filename": name, "rows": rows, "csv": text})
