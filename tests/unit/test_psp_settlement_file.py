"""The simulator's day file: a row for every movement it made that day (charges, refunds, paid payouts,
disputes and their reversals), closed by one summary row per currency that the rows sum to."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from functions.common.ids import deterministic_id
from functions.reconciliation.closing_balance import check_closing_balance
from local_stack.psp.settlement import fee_for, settlement_route
from local_stack.psp.simulator import PspSimulator

TODAY = datetime.now(UTC).date().isoformat()


@dataclass(frozen=True)
class DisputeMove:
    """What the disputes simulator records of each balance movement (type, dispute, amount, fee, when)."""

    type: str
    dispute_id: str
    charge: str
    merchant_reference: str
    amount: int
    fee: int
    currency: str
    created_at: str


class Disputes:
    def __init__(self, moves: list[DisputeMove]) -> None:
        self.movements = moves


def _day_file(sim: PspSimulator, **query: str) -> list[dict[str, str]]:
    reply = settlement_route(sim, re.match("", ""), {"date": [TODAY], **{k: [v] for k, v in query.items()}})  # type: ignore[arg-type]
    assert reply.status == 200
    text = reply.body["csv"]
    return list(csv.DictReader(io.StringIO(text)))


def _a_day(sim: PspSimulator) -> None:
    charge = sim.charges.create(
        "po_1", {"amount": 10_000, "currency": "USD", "payment_method": "tok_visa", "merchant_reference": "po_1"}
    ).body
    assert sim.refunds.create("re_1", {"charge": charge["id"], "amount": 2_000}).status == 200
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    sim.disputes = Disputes(  # type: ignore[attr-defined]
        [
            DisputeMove("dispute", "dp_psp_1", charge["id"], "po_1", 1_000, 1_500, "USD", now),
            DisputeMove("dispute_reversal", "dp_psp_1", charge["id"], "po_1", 1_000, 0, "USD", now),
        ]
    )


def test_the_day_file_has_a_row_of_every_type_and_a_summary_its_rows_sum_to() -> None:
    sim = PspSimulator(api_key="k")
    _a_day(sim)

    rows = _day_file(sim)

    found = sorted((r["type"], r["merchant_reference"], r["amount"], r["fee"], r["net"], r["status"]) for r in rows)
    our_dispute = deterministic_id("dp", "dp_psp_1")
    fee = fee_for(10_000, "USD")
    assert found == [
        ("charge", "po_1", "10000", str(fee), str(10_000 - fee), "succeeded"),
        ("dispute", our_dispute, "1000", "1500", "2500", "succeeded"),
        ("dispute_reversal", our_dispute, "1000", "0", "1000", "succeeded"),
        ("refund", "re_1", "2000", "0", "2000", "succeeded"),
        ("summary", TODAY, "8000", str(fee + 1_500), str(8_000 - fee - 1_500), "closing"),
    ]
    assert rows[-1]["type"] == "summary"
    text = _text(sim)
    assert check_closing_balance(text.splitlines(keepends=True)) is None


def _text(sim: PspSimulator, **query: str) -> str:
    reply = settlement_route(sim, re.match("", ""), {"date": [TODAY], **{k: [v] for k, v in query.items()}})  # type: ignore[arg-type]
    return str(reply.body["csv"])


def test_a_truncated_file_still_carries_the_summary_of_what_it_lost() -> None:
    sim = PspSimulator(api_key="k")
    _a_day(sim)
    problem = check_closing_balance(_text(sim, truncate="1").splitlines(keepends=True))
    assert problem is not None and problem.reason == "balance_mismatch"


def test_planted_differences_apply_to_every_row_type() -> None:
    sim = PspSimulator(api_key="k")
    _a_day(sim)
    our_dispute = deterministic_id("dp", "dp_psp_1")
    changed = _day_file(sim, amount="re_1", status=our_dispute, currency="po_1")
    rows = {(r["type"], r["merchant_reference"]): r for r in changed}
    assert (rows["refund", "re_1"]["amount"], rows["refund", "re_1"]["net"]) == ("2100", "2100")
    assert [rows[kind, our_dispute]["status"] for kind in ("dispute", "dispute_reversal")] == ["failed"] * 2
    assert rows["charge", "po_1"]["currency"] == "EUR"
    assert check_closing_balance(_text(sim, amount="re_1").splitlines(keepends=True)) is None


def test_an_empty_day_has_one_zero_summary() -> None:
    rows = _day_file(PspSimulator(api_key="k"))
    assert [(r["type"], r["currency"], r["amount"], r["net"]) for r in rows] == [("summary", "USD", "0", "0")]
