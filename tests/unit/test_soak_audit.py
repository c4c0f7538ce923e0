"""The soak's use of the money auditor: every finding of the auditor is a violation in the soak's line,
and an auditor that cannot report is one too (the soak cannot vouch for the money then)."""

from __future__ import annotations

import os
from pathlib import Path

from local_stack.commands.soak import SoakResult
from local_stack.soak.audit import audit_timeout, auditor_findings, findings_from_report
from local_stack.soak.check import Finding

REPORT = {
    "started_at": "2026-11-30T03:00:00Z",
    "window_start": "2026-11-30T02:00:00Z",
    "window_end": "2026-11-30T03:00:00Z",
    "orders_checked": 3,
    "violations": {"wallet_matches_ledger": 1, "trial_balance_zero": 0},
    "findings": [
        {
            "check": "wallet_matches_ledger",
            "message": "available 100 != seller_payable 90",
            "ids": {"seller_id": "s1", "currency": "USD"},
        }
    ],
}


def test_the_auditors_findings_are_violations_in_the_soaks_line() -> None:
    findings = findings_from_report(REPORT)
    assert findings == [
        Finding("audit:wallet_matches_ledger", ("seller_id=s1", "currency=USD"), "available 100 != seller_payable 90")
    ]
    orphan = Finding("orphan_charge", ("po_1", "ch_1"), "FAILED, charged at the PSP", violation=False)
    result = SoakResult(
        checkouts=2, orders=3, faults={"psp_5xx": 2, "crash_before": 1}, findings=[*findings, orphan], seconds=12.4
    )
    assert result.line() == "soak: 2 checkouts, 3 orders, 3 faults injected, 1 violations, 12 s"
    assert result.report()["violations"] == [
        "audit:wallet_matches_ledger: available 100 != seller_payable 90 (seller_id=s1, currency=USD)"
    ]


def test_an_auditor_that_cannot_report_is_a_violation_and_the_environment_is_untouched(tmp_path: Path) -> None:
    before = dict(os.environ)
    missing = tmp_path / "no-stack.json"

    findings = auditor_findings(missing, window_seconds=60, timeout=300)

    assert [(f.check, f.ids, f.violation) for f in findings] == [("audit", (str(missing),), True)]
    assert "exit status 1, unreadable report" in findings[0].message
    assert f"{missing} not found" in findings[0].message
    assert dict(os.environ) == before


def test_an_auditor_that_does_not_report_in_time_is_a_violation_not_a_crash(tmp_path: Path) -> None:
    missing = tmp_path / "no-stack.json"

    # The interpreter alone takes longer than this to start: the auditor is stopped before it can report.
    findings = auditor_findings(missing, window_seconds=60, timeout=0.001)

    assert [(f.check, f.ids, f.violation) for f in findings] == [("audit", (str(missing),), True)]
    assert findings[0].message.startswith("no report within 0 s (the auditor was stopped)")


def test_the_auditors_time_allowance_grows_with_the_orders_it_reads() -> None:
    assert audit_timeout(0) == 300.0
    assert audit_timeout(250) == 425.0
    assert audit_timeout(2525) == 1562.5
