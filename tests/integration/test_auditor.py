"""The money auditor against the template's tables and queues in moto: a consistent stack passes, and each
check reports a violation planted directly in the tables or queues, naming the ids involved."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest

from functions.auditor import domain
from functions.auditor.handler import AuditPorts, build_ports
from functions.auditor.models import CHECKS, AuditReport
from functions.auditor.refunds import Each
from functions.auditor.settings import AuditorSettings
from functions.common import decided_index
from functions.common.clock import iso, utc_now
from functions.common.dynamo import table
from functions.common.events import Hold, OrderCharged
from functions.ledger.domain import charge_journal, journal
from functions.psp.models import ChargeResult
from functions.wallet import keys
from functions.wallet.holds import held_share
from functions.wallet.store import DynamoWalletStore
from local_stack.deploy import LocalCloud

HANDLER = "functions.auditor.handler.handler"


class PspCharges:
    """The PSP's answer by idempotency key (the PSP is not under test here)."""

    def __init__(self, charges: dict[str, ChargeResult]) -> None:
        self.charges = charges

    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None:
        return self.charges.get(idempotency_key)


def _order(settings: AuditorSettings, order_id: str, status: str, **extra: Any) -> None:
    decided_at = iso(utc_now() - timedelta(minutes=10))
    shard = decided_index.decided_shard(order_id, decided_at)
    item: dict[str, Any] = {
        "payment_order_id": order_id,
        "payment_id": f"pay_{order_id}",
        "seller_id": "seller_a",
        "amount": 1500,
        "currency": "USD",
        "status": status,
        "decided_at": decided_at,
    }
    if status == "SUCCEEDED":
        item |= {decided_index.ATTRIBUTE: shard, "psp_reference": f"ch_{order_id}"}
    elif status == "FAILED":
        item |= {decided_index.FAILED_ATTRIBUTE: shard}
    table(settings.orders_table).put_item(Item=item | extra)


def _succeed_fully(
    settings: AuditorSettings,
    ports: AuditPorts,
    order_id: str,
    *,
    fee: int = 0,
    booked_fee: int | None = None,
    hold: Hold = "none",
) -> None:
    """An order the whole pay-in path handled: decided, credited once, booked once (with `booked_fee` as
    the commission in its journal and wallet credit, when that is planted to differ from the order's)."""
    _order(settings, order_id, "SUCCEEDED", application_fee=fee, hold=hold)
    charge = OrderCharged(
        payment_id=f"pay_{order_id}",
        payment_order_id=order_id,
        seller_id="seller_a",
        amount=1500,
        application_fee=fee if booked_fee is None else booked_fee,
        hold=hold,
        currency="USD",
        psp_reference=f"ch_{order_id}",
    )
    DynamoWalletStore(settings.wallet_table).credit_once(
        seller_id="seller_a",
        currency="USD",
        amount=charge.seller_amount,
        applied_marker=f"charge#{order_id}",
        held=held_share(charge, credited_at=utc_now(), hold_days=7),
    )
    assert ports.journals.append(charge_journal(charge, created_at=iso(utc_now())))


@pytest.fixture
def audited(cloud: LocalCloud, use_function_env: Callable[[str], None]) -> tuple[AuditorSettings, AuditPorts]:
    use_function_env(HANDLER)
    settings = AuditorSettings.from_env()
    psp = PspCharges(
        {order_id: ChargeResult(status="succeeded", psp_reference=f"ch_{order_id}") for order_id in ("po_ok", "po_fee")}
    )
    ports = replace(build_ports(settings), charges=psp)  # type: ignore[arg-type]
    _succeed_fully(settings, ports, "po_ok")
    _succeed_fully(settings, ports, "po_fee", fee=300)  # 1,200 to the seller, 300 to platform_revenue
    return settings, ports


def _audit(ports: AuditPorts, each: Each = map) -> AuditReport:
    return domain.audit(
        ports,
        now=utc_now(),
        window=timedelta(hours=2),
        settle=timedelta(0),
        processing_deadline=timedelta(hours=1),
        pause=lambda: None,
        each=each,
    )


def test_a_consistent_stack_has_no_violation(audited: tuple[AuditorSettings, AuditPorts]) -> None:
    _, ports = audited
    report = _audit(ports)
    assert (report.findings, report.orders_checked) == ([], 2)
    assert report.violations == dict.fromkeys(CHECKS, 0)


def test_each_planted_violation_is_reported_with_its_ids(audited: tuple[AuditorSettings, AuditPorts]) -> None:
    settings, ports = audited
    psp: PspCharges = ports.charges  # type: ignore[assignment]
    # Given a wallet with 1 more than its ledger account
    table(settings.wallet_table).update_item(
        Key={keys.PARTITION_KEY: "seller_a", keys.SORT_KEY: keys.balance_key("USD")},
        UpdateExpression="ADD available :one",
        ExpressionAttributeValues={":one": 1},
    )
    # And an EUR balance record with 5 debits no entry explains
    table(settings.balances_table).put_item(Item={"currency": "EUR", "account": "bank_cash", "debits": 5})
    # And a SUCCEEDED order with a PSP charge but neither a credit nor a journal
    _order(settings, "po_lost", "SUCCEEDED")
    psp.charges["po_lost"] = ChargeResult(status="succeeded", psp_reference="ch_po_lost")
    # And a FAILED order the PSP charged, with no orphan recorded; and one whose orphan charge is recorded
    _order(settings, "po_charged", "FAILED")
    psp.charges["po_charged"] = ChargeResult(status="succeeded", psp_reference="ch_po_charged")
    _order(settings, "po_orphan", "FAILED", orphan_psp_reference="ch_po_orphan")
    psp.charges["po_orphan"] = ChargeResult(status="succeeded", psp_reference="ch_po_orphan")
    # And an order EXECUTING for five hours
    _order(settings, "po_stuck", "EXECUTING", open_bucket="OPEN", open_since=iso(utc_now() - timedelta(hours=5)))
    # And an order with a commission of 300 whose journal and credit gave the seller all 1,500
    psp.charges["po_fee_lost"] = ChargeResult(status="succeeded", psp_reference="ch_po_fee_lost")
    _succeed_fully(settings, ports, "po_fee_lost", fee=300, booked_fee=0)
    # And an order whose refund journal gave back 400 of its 300 commission
    psp.charges["po_fee_over"] = ChargeResult(status="succeeded", psp_reference="ch_po_fee_over")
    _succeed_fully(settings, ports, "po_fee_over", fee=300)
    assert ports.journals.append(
        journal(
            "refund",
            "rf_planted",
            [("platform_revenue", "debit", 400), ("psp_receivable", "credit", 400)],
            currency="USD",
            payment_order_id="po_fee_over",
            created_at=iso(utc_now()),
        )
    )
    # And a message in the ledger queue's DLQ
    dlq = next(url for url in settings.queue_urls if "LedgerQueueDlq" in url)
    boto3.client("sqs").send_message(QueueUrl=dlq, MessageBody="{}")

    # When the auditor runs
    report = _audit(ports)

    # Then each check reports its violation, naming the ids
    found = sorted((f.check, tuple(sorted(f.ids.items())), f.message) for f in report.findings)
    order_ids = (("payment_id", "pay_po_lost"), ("payment_order_id", "po_lost"), ("seller_id", "seller_a"))
    assert found == sorted(
        [
            (
                "wallet_matches_ledger",
                (("currency", "USD"), ("seller_id", "seller_a")),
                # po_ok 1,500 + po_fee 1,200 + po_fee_lost 1,500 + po_fee_over 1,200, and the planted 1
                "wallet available 5401 / reserved 0 / pending 0, ledger seller_payable:seller_a 5400 / payout in "
                "transit 0 + dispute reserve 0 / seller_pending:seller_a 0",
            ),
            ("trial_balance_zero", (("currency", "EUR"),), "debits 5 != credits 0"),
            ("succeeded_orders_complete", order_ids, "no wallet credit"),
            (
                "succeeded_orders_complete",
                order_ids,
                f"charge journal {_journal_id('po_lost')} is [], not [('psp_receivable', 'debit', 1500), "
                "('seller_payable:seller_a', 'credit', 1500)] (amount 1500, application fee 0)",
            ),
            (
                "succeeded_orders_complete",
                _ids("po_fee_lost"),
                f"charge journal {_journal_id('po_fee_lost')} is [('psp_receivable', 'debit', 1500), "
                "('seller_payable:seller_a', 'credit', 1500)], not [('platform_revenue', 'credit', 300), "
                "('psp_receivable', 'debit', 1500), ('seller_payable:seller_a', 'credit', 1200)] "
                "(amount 1500, application fee 300)",
            ),
            (
                "commission_within_fee",
                _ids("po_fee_over"),
                "the order's journals leave platform_revenue -100, outside 0..300",
            ),
            (
                "failed_orders_uncharged",
                (
                    ("payment_id", "pay_po_charged"),
                    ("payment_order_id", "po_charged"),
                    ("psp_reference", "ch_po_charged"),
                    ("seller_id", "seller_a"),
                ),
                "the PSP charged ch_po_charged and no orphan charge is recorded",
            ),
            (
                "processing_past_deadline",
                (("payment_id", "pay_po_stuck"), ("payment_order_id", "po_stuck"), ("seller_id", "seller_a")),
                f"EXECUTING since {_open_since(settings, 'po_stuck')}",
            ),
            ("dead_letter_queues_empty", (("queue", dlq.rsplit("/", 1)[-1]),), "1 messages"),
        ]
    )
    # decided in the window: po_ok, po_fee, po_lost, po_fee_lost, po_fee_over, po_charged, po_orphan
    assert report.orders_checked == 7
    assert report.violations == {
        "wallet_matches_ledger": 1,
        "trial_balance_zero": 1,
        "succeeded_orders_complete": 3,
        "failed_orders_uncharged": 1,
        "processing_past_deadline": 1,
        "dead_letter_queues_empty": 1,
        "refunds_match_psp": 0,
        "commission_within_fee": 1,
    }
    # And checking the orders on four threads (as the scheduled auditor does) finds the same, in the same order
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert _audit(ports, each=pool.map).findings == report.findings


def _ids(order_id: str) -> tuple[tuple[str, str], ...]:
    return (("payment_id", f"pay_{order_id}"), ("payment_order_id", order_id), ("seller_id", "seller_a"))


def _journal_id(order_id: str) -> str:
    from functions.common.ids import deterministic_id

    return deterministic_id("jr", "charge", order_id)


def _open_since(settings: AuditorSettings, order_id: str) -> str:
    return str(table(settings.orders_table).get_item(Key={"payment_order_id": order_id})["Item"]["open_since"])


def test_the_scheduled_auditor_emits_a_metric_per_check_and_logs_each_finding(
    audited: tuple[AuditorSettings, AuditPorts],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings, ports = audited
    handler = importlib.import_module("functions.auditor.handler")
    monkeypatch.setattr(handler, "_ports", lambda: ports)
    handler._settings.cache_clear()
    monkeypatch.setenv("AUDIT_SETTLE_SECONDS", "0")
    monkeypatch.setenv("AUDIT_RECHECK_PAUSE_SECONDS", "0")
    # Given one violation: an EUR balance record no entry explains
    table(settings.balances_table).put_item(Item={"currency": "EUR", "account": "bank_cash", "credits": 7})
    capsys.readouterr()

    # When the scheduled auditor runs
    from tests.integration.conftest import context

    result = handler.handler({}, context())

    # Then it returns the report, publishes one metric per check, and logs the finding at error level
    assert result["violations"] == {check: (1 if check == "trial_balance_zero" else 0) for check in CHECKS}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    published = {k: v for line in lines for k, v in line.items() if k.startswith(handler.METRIC_PREFIX)}
    assert published == {
        handler.METRIC_PREFIX + check: [1.0 if check == "trial_balance_zero" else 0.0] for check in CHECKS
    }
    errors = [(r.getMessage(), r.check, r.ids, r.detail) for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [("audit violation", "trial_balance_zero", {"currency": "EUR"}, "debits 0 != credits 7")]
    handler._settings.cache_clear()


def test_a_restore_booked_before_its_debit_is_read_again_after_the_pause_not_reported(
    audited: tuple[AuditorSettings, AuditPorts],
) -> None:
    # Given po_fee (1,500 with a commission of 300), whose refund's restore was booked before its debit: for a
    # moment the order's journals leave platform_revenue 600
    _, ports = audited

    def refund_journal(kind: str, direction: str) -> list[Any]:
        other = "credit" if direction == "debit" else "debit"
        return journal(
            kind,
            "rf_" + "b" * 32,
            # the commission's part only: a seller's part would make the wallet check pause first
            [("platform_revenue", direction, 300), ("psp_receivable", other, 300)],
            currency="USD",
            payment_order_id="po_fee",
            created_at=iso(utc_now()),
        )

    assert ports.journals.append(refund_journal("refund_reversal", "credit"))
    paused = []

    def debit_lands() -> None:  # the debit's journal lands while the auditor pauses
        paused.append(True)
        assert ports.journals.append(refund_journal("refund", "debit"))

    # When the auditor runs, pausing once
    report = domain.audit(
        ports,
        now=utc_now(),
        window=timedelta(hours=2),
        settle=timedelta(0),
        processing_deadline=timedelta(hours=1),
        pause=debit_lands,
    )

    # Then the order is read again after the pause, and nothing is reported about its commission
    assert len(paused) == 1
    assert [f for f in report.findings if f.check == "commission_within_fee"] == []


def test_a_refund_decided_after_its_order_left_the_window_is_checked_against_the_fee(
    audited: tuple[AuditorSettings, AuditPorts],
) -> None:
    # Given po_fee (1,500 with a commission of 300, decided ten minutes ago), refunded a day later with a
    # journal that gives back 1,000 of the platform's revenue
    settings, ports = audited
    a_day_later = utc_now() + timedelta(days=1)
    refund_id = "rf_" + "d" * 32
    table(settings.refunds_table).put_item(
        Item={
            "pk": f"REFUND#{refund_id}",
            "sk": "REFUND",
            "refund_id": refund_id,
            "payment_order_id": "po_fee",
            "status": "SUCCEEDED",
            "updated_at": iso(a_day_later - timedelta(minutes=5)),
        }
    )
    assert ports.journals.append(
        journal(
            "refund",
            refund_id,
            [("platform_revenue", "debit", 1000), ("psp_receivable", "credit", 1000)],
            currency="USD",
            payment_order_id="po_fee",
            created_at=iso(a_day_later),
        )
    )

    # When the auditor runs a day later: the order itself is long out of its window
    report = domain.audit(
        ports,
        now=a_day_later,
        window=timedelta(hours=2),
        settle=timedelta(0),
        processing_deadline=timedelta(hours=1),
        pause=lambda: None,
    )

    # Then the refund's window brings the order back, and its commission is out of bounds
    assert report.orders_checked == 0
    assert [(f.check, f.ids["payment_order_id"], f.message) for f in report.findings] == [
        ("commission_within_fee", "po_fee", "the order's journals leave platform_revenue -700, outside 0..300")
    ]


def test_a_held_order_is_checked_against_seller_pending(audited: tuple[AuditorSettings, AuditPorts]) -> None:
    # Given a held order credited to pending and booked to seller_pending, as the pay-in path does
    settings, ports = audited
    _succeed_fully(settings, ports, "po_held", fee=100, hold="until_fulfilled")
    ports.charges.charges["po_held"] = ChargeResult(status="succeeded", psp_reference="ch_po_held")  # type: ignore[attr-defined]
    assert _audit(ports).findings == []

    # When the wallet's pending is 1 more than its ledger account
    table(settings.wallet_table).update_item(
        Key={keys.PARTITION_KEY: "seller_a", keys.SORT_KEY: keys.balance_key("USD")},
        UpdateExpression="ADD pending :one",
        ExpressionAttributeValues={":one": 1},
    )

    # Then the buckets differ, and the message says which
    (finding,) = _audit(ports).findings
    assert (finding.check, finding.ids) == ("wallet_matches_ledger", {"seller_id": "seller_a", "currency": "USD"})
    assert finding.message == (
        "wallet available 2700 / reserved 0 / pending 1401, ledger seller_payable:seller_a 2700 / payout in "
        "transit 0 + dispute reserve 0 / seller_pending:seller_a 1400"
    )


def test_a_held_orders_charge_journal_booked_to_seller_payable_is_reported(
    audited: tuple[AuditorSettings, AuditPorts],
) -> None:
    # Given a held order whose charge was booked as if it were not held (the wallet credited pending)
    settings, ports = audited
    _order(settings, "po_misbooked", "SUCCEEDED", hold="until_fulfilled", seller_id="seller_b")
    ports.charges.charges["po_misbooked"] = ChargeResult(status="succeeded", psp_reference="ch_po_misbooked")  # type: ignore[attr-defined]
    charge = OrderCharged(
        payment_id="pay_po_misbooked",
        payment_order_id="po_misbooked",
        seller_id="seller_b",
        amount=1500,
        currency="USD",
        psp_reference="ch_po_misbooked",
    )
    DynamoWalletStore(settings.wallet_table).credit_once(
        seller_id="seller_b", currency="USD", amount=1500, applied_marker="charge#po_misbooked"
    )
    assert ports.journals.append(charge_journal(charge, created_at=iso(utc_now())))

    findings = [(f.check, f.ids.get("payment_order_id")) for f in _audit(ports).findings]

    assert findings == [("succeeded_orders_complete", "po_misbooked")]


class CountingJournals:
    def __init__(self, journals: Any) -> None:
        self.journals = journals
        self.reads: list[str] = []

    def by_payment_order(self, payment_order_id: str) -> Any:
        self.reads.append(payment_order_id)
        return self.journals.by_payment_order(payment_order_id)


@pytest.mark.parametrize("threads", [0, 4])
def test_each_orders_journal_entries_are_read_once_per_run(
    audited: tuple[AuditorSettings, AuditPorts], threads: int
) -> None:
    _, ports = audited
    counting = CountingJournals(ports.journals)
    with ThreadPoolExecutor(max_workers=max(threads, 1)) as pool:
        report = _audit(replace(ports, journals=counting), each=pool.map if threads else map)  # type: ignore[arg-type]
    assert report.findings == []
    assert sorted(counting.reads) == ["po_fee", "po_ok"]
