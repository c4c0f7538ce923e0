"""An orphan charge's refund in the settlement file, read from the refunds table as the reconciliation reads
it: its charge was never booked (the order FAILED) and its refund moved no seller money and booked no
journal, so its refund row must not be booked either (a cash out would clear a receivable that was never
raised, and take from the bank money the unbooked charge brought in)."""

from __future__ import annotations

from functions.executor.domain import OrderExecution
from functions.reconciliation.models import Order
from functions.reconciliation.ports import RecordSource
from functions.reconciliation.records_store import REFUNDS, DynamoRecords
from functions.refund import domain
from functions.refund.store import DynamoRefundStore
from local_stack.deploy import LocalCloud
from tests.integration.test_refund_adapters import table
from tests.support.reconciliation_ports import Claims, Orders, Postings
from tests.support.settlement_files import HEADER
from tests.unit.test_reconciliation_row_types import NONE, T0, breaks_of, row, run_file


def test_an_orphan_charges_refund_row_is_a_break_and_books_no_cash_out(cloud: LocalCloud) -> None:
    # Given an order we decided FAILED whose charge the PSP made (an orphan charge), and its automatic refund,
    # which the PSP made too
    refunds_table = table(cloud, "RefundsTable")
    store = DynamoRefundStore(refunds_table)
    failed = OrderExecution(
        payment_order_id="po_orphan",
        payment_id="pay_o",
        seller_id="seller",
        amount=2_500,
        currency="USD",
        status="FAILED",
        orphan_psp_reference="psp_po_orphan",
    )
    refund = domain.refund_orphan_charge(failed, store=store, now=lambda: T0)
    assert refund is not None and refund.orphan
    assert store.succeed(refund.refund_id, "psp_rf").status == "SUCCEEDED"
    orders = Orders([Order("po_orphan", "FAILED", 2_500, "USD", None, None, "seller")])
    records: dict[str, RecordSource] = {"refund": DynamoRecords(refunds_table, REFUNDS)}

    # When the file carrying the charge and its refund is reconciled
    text = HEADER + row("charge", "po_orphan", 2_500, 1) + row("refund", refund.refund_id, 2_500, 2, psp="psp_rf")
    claims, postings = Claims(), Postings()
    tally = run_file(text, orders, records, claims, postings)

    # Then neither row is booked: both are breaks for review, and no journal goes to the ledger
    assert tally.matched == 0
    assert tally.breaks == {**NONE, "status_mismatch": 2}
    assert [(b[0], b[2]) for b in breaks_of(tally)] == [
        ("status_mismatch", "po_orphan"),
        ("status_mismatch", refund.refund_id),
    ]
    assert postings.journals == []
