"""The auditor's refund check: our refunds' total of a charge against the PSP's, a difference read again
after a pause (a refund in flight), orders without refunds left alone."""

from __future__ import annotations

from functions.auditor.models import OrderRecord
from functions.auditor.refunds import check_refunds


def order(po: str, status: str = "SUCCEEDED", **extra: str) -> OrderRecord:
    return OrderRecord(
        payment_order_id=po,
        payment_id=f"pay_{po}",
        seller_id="s",
        currency="USD",
        amount=1000,
        status=status,
        psp_reference=f"ch_{po}" if status == "SUCCEEDED" else None,
        **extra,  # type: ignore[arg-type]
    )


class Totals:
    def __init__(self, ours: dict[str, int], psp: dict[str, list[int]]) -> None:
        self.ours, self.psp, self.asked = ours, psp, []  # type: ignore[var-annotated]

    def refunded(self, payment_order_id: str) -> int | None:
        return self.ours.get(payment_order_id)

    def refunded_amount(self, charge_reference: str) -> int:
        self.asked.append(charge_reference)
        answers = self.psp[charge_reference]
        return answers.pop(0) if len(answers) > 1 else answers[0]


def test_matching_totals_and_orders_without_refunds_pass() -> None:
    totals = Totals({"po_1": 700, "po_o": 1000}, {"ch_po_1": [700], "ch_orphan": [1000]})
    orders = [order("po_1"), order("po_2"), order("po_o", "FAILED", orphan_psp_reference="ch_orphan")]
    assert check_refunds(orders, ours=totals, psp=totals, pause=lambda: None) == []
    assert totals.asked == ["ch_po_1", "ch_orphan"]


def test_a_difference_that_lasts_is_reported_and_one_in_flight_is_not() -> None:
    paused: list[bool] = []
    totals = Totals({"po_1": 700, "po_2": 300}, {"ch_po_1": [400, 400], "ch_po_2": [0, 300]})
    findings = check_refunds([order("po_1"), order("po_2")], ours=totals, psp=totals, pause=lambda: paused.append(True))
    assert paused == [True]
    assert [(f.check, f.message, f.ids["payment_order_id"], f.ids["psp_reference"]) for f in findings] == [
        ("refunds_match_psp", "our refunds hold 700 of the charge, the PSP's 400", "po_1", "ch_po_1")
    ]
