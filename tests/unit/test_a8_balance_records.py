"""A8: a journal's movements per account, and the trial balance read from balance records."""

from __future__ import annotations

from functions.common.money import MAX_AGGREGATE_MINOR
from functions.ledger.balances import (
    SHARDS,
    AccountBalance,
    account_of,
    movements,
    record_key,
    summed,
    trial_balance_of,
)
from functions.ledger.domain import CurrencyTotals, journal, trial_balance


def test_a8_a_journal_moves_each_account_once_even_when_two_lines_share_it() -> None:
    entries = journal(
        "settlement",
        "run_1:0:USD",
        [("bank_cash", "debit", 700), ("bank_cash", "debit", 300), ("psp_receivable", "credit", 1000)],
        currency="USD",
        payment_order_id=None,
        created_at="2026-11-30T00:00:00.000Z",
    )
    assert movements(entries) == [
        AccountBalance(currency="USD", account="bank_cash", debits=1000, credits=0),
        AccountBalance(currency="USD", account="psp_receivable", debits=0, credits=1000),
    ]


def test_a8_trial_balance_of_records_equals_the_trial_balance_of_entries_up_to_64_bits() -> None:
    half = MAX_AGGREGATE_MINOR // 2
    entries = [
        entry
        for n, amount in enumerate((half, MAX_AGGREGATE_MINOR - half))
        for entry in journal(
            "settlement",
            f"run_{n}",
            [("bank_cash", "debit", amount), ("psp_receivable", "credit", amount)],
            currency="IDR",
            payment_order_id=None,
            created_at="2026-11-30T00:00:00.000Z",
        )
    ]
    records: dict[tuple[str, str], AccountBalance] = {}
    for change in movements(entries):
        record = records.setdefault(
            (change.currency, change.account), change.model_copy(update={"debits": 0, "credits": 0})
        )
        record.debits += change.debits
        record.credits += change.credits
    assert trial_balance_of(records.values()) == trial_balance(entries)
    assert trial_balance_of(records.values()).currencies == {
        "IDR": CurrencyTotals(debits=MAX_AGGREGATE_MINOR, credits=MAX_AGGREGATE_MINOR)
    }
    assert records[("IDR", "psp_receivable")].credit_balance == MAX_AGGREGATE_MINOR


def test_a8_an_unbalanced_set_of_records_is_reported_unbalanced() -> None:
    records = [
        AccountBalance(currency="EUR", account="bank_cash", debits=10),
        AccountBalance(currency="EUR", account="psp_receivable", credits=9),
        AccountBalance(currency="USD", account="bank_cash", debits=5, credits=5),
    ]
    assert trial_balance_of(records).balanced is False


def test_a8_a_journal_moves_one_shard_of_each_account_and_the_shards_sum_to_the_account() -> None:
    keys = {record_key("psp_receivable", f"jr_{n}") for n in range(200)}
    assert keys == {f"psp_receivable#{shard}" for shard in range(SHARDS)}
    assert record_key("seller_payable:s1", "jr_1") == record_key("seller_payable:s1", "jr_1")
    assert {account_of(key) for key in keys} == {"psp_receivable"}
    assert account_of("legacy_account") == "legacy_account"
    shards = [AccountBalance(currency="USD", account="psp_receivable", debits=n, credits=0) for n in range(1, 5)]
    assert summed(shards) == [AccountBalance(currency="USD", account="psp_receivable", debits=10, credits=0)]
