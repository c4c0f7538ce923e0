"""Issue 11 A6 (infra): a ledger journal id booked again with other content raises an alarm, from either
booking function, and the postings function may read back what a journal id holds (and still not
update or delete it)."""

from __future__ import annotations

from tests.conftest import Synthesized
from tests.infra.test_least_privilege import LEDGER_APPEND, _grants
from tests.infra.test_money_alarms import _alarm_on, _services


def test_a6_journal_conflicts_from_either_booking_function_raise_an_alarm(synthesized: Synthesized) -> None:
    props = _alarm_on(synthesized, "LedgerJournalConflicts")
    assert _services(props) == ["ledger", "ledger-postings"]
    assert (props["Threshold"], props["ComparisonOperator"], props["EvaluationPeriods"]) == (
        0,
        "GreaterThanThreshold",
        1,
    )
    assert props["TreatMissingData"] == "notBreaching"
    ((topic, _),) = synthesized.resources("AWS::SNS::Topic").items()
    assert props["AlarmActions"] == [{"Ref": topic}]
    assert "DLQ" in props["AlarmDescription"]


def test_a6_the_postings_function_reads_journals_back_and_only_appends(synthesized: Synthesized) -> None:
    grants = _grants(synthesized)["PayInLedgerPostingsRole"]["PayInLedgerTable"]
    assert grants == {"dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem"}
    assert grants <= LEDGER_APPEND
