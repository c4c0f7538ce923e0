"""A8: balance records kept with the entries, and the money paths that read them without a Scan."""

from __future__ import annotations

import importlib
import json
from collections import defaultdict
from collections.abc import Callable

from functions.common.api import KEY_TENANTS
from functions.common.dynamo import table
from functions.common.events import JournalPosting, OrderCharged, PostingLine
from functions.common.money import MAX_AGGREGATE_MINOR, TWELVE_DIGIT_AMOUNT_MINOR
from functions.ledger.balances import AccountBalance, rebuilt
from functions.ledger.store import DynamoBalanceStore, DynamoLedgerStore
from functions.payout.store import WalletBalances
from functions.sellers.store import DynamoSellerStore
from functions.wallet import keys
from functions.wallet.store import DynamoWalletStore
from local_stack.deploy import LocalCloud
from tests.integration.conftest import api_event, context, sqs_event
from tests.support.bank_accounts import stored_account
from tests.support.dynamo_calls import dynamodb_operations

CHARGES = 20


def _charge(order: str, seller: str, amount: int, currency: str = "IDR") -> str:
    return OrderCharged(
        payment_id="pay_a8",
        payment_order_id=order,
        seller_id=seller,
        amount=amount,
        currency=currency,
        psp_reference=f"ch_{order}",
    ).model_dump_json()


def _sums_of_entries(store: DynamoLedgerStore) -> dict[tuple[str, str], tuple[int, int]]:
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for entry in store.all_entries():
        sums[(entry.currency, entry.account)][0 if entry.direction == "debit" else 1] += entry.amount
    return {key: (debits, credits) for key, (debits, credits) in sums.items()}


def _records(balances: DynamoBalanceStore) -> dict[tuple[str, str], tuple[int, int]]:
    return {(b.currency, b.account): (b.debits, b.credits) for b in balances.all_balances()}


def test_a8_balance_records_equal_the_sum_of_entries_after_many_postings_and_repeats(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    use_function_env("functions.ledger.handler.handler")
    use_function_env("functions.ledger.handler.postings_handler")
    ledger = importlib.import_module("functions.ledger.handler")
    ledger._booking_ports.cache_clear()
    ledger._postings_ports.cache_clear()
    largest = TWELVE_DIGIT_AMOUNT_MINOR

    # Given 20 charges of the largest IDR order over 4 sellers, every one delivered twice
    charges = [_charge(f"po_{n}", f"seller_{n % 4}", largest) for n in range(CHARGES)]
    assert ledger.handler(sqs_event(*charges), context()) == {"batchItemFailures": []}
    assert ledger.handler(sqs_event(*charges), context()) == {"batchItemFailures": []}
    # And a posting that brings IDR's debits to exactly the largest 64-bit aggregate, sent three times,
    # plus a USD posting of three lines (the PSP kept a fee)
    rest = MAX_AGGREGATE_MINOR - CHARGES * largest
    big = JournalPosting(
        producer="reconciliation",
        reference="run_1",
        kind="settlement",
        business_id="run_1:0:IDR",
        currency="IDR",
        lines=[
            PostingLine(account="bank_cash", direction="debit", amount=rest),
            PostingLine(account="psp_receivable", direction="credit", amount=rest),
        ],
    ).model_dump_json()
    split = JournalPosting(
        producer="reconciliation",
        reference="run_1",
        kind="settlement",
        business_id="run_1:1:USD",
        currency="USD",
        lines=[
            PostingLine(account="bank_cash", direction="debit", amount=700),
            PostingLine(account="psp_fee_expense", direction="debit", amount=300),
            PostingLine(account="psp_receivable", direction="credit", amount=1000),
        ],
    ).model_dump_json()
    for _ in range(3):
        assert ledger.postings_handler(sqs_event(big, split), context()) == {"batchItemFailures": []}

    # Then every balance record equals the sum of its account's entries, each journal counted once
    store = ledger._postings_ports().store
    balances = DynamoBalanceStore(store.balances_table)
    assert _records(balances) == _sums_of_entries(store)
    assert balances.balance("psp_receivable", "IDR") == AccountBalance(
        currency="IDR", account="psp_receivable", debits=CHARGES * largest, credits=rest
    )
    assert balances.balance("seller_payable:seller_1", "IDR").credit_balance == 5 * largest
    assert (balances.balance("bank_cash", "USD").debits, balances.balance("psp_fee_expense", "USD").debits) == (
        700,
        300,
    )
    assert balances.balance("no_such_account", "USD") == AccountBalance(currency="USD", account="no_such_account")

    # And the trial balance, read from the records with no Scan, is the 64-bit total and balanced
    use_function_env("functions.ledger.api.api_handler")
    ledger_api = importlib.import_module("functions.ledger.api")
    ledger_api._api_ports.cache_clear()
    KEY_TENANTS.clear()
    with dynamodb_operations() as called:
        response = ledger_api.api_handler(api_event("GET", "/v1/ledger/trial-balance"), context())
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {
        "currencies": {
            "IDR": {"debits": MAX_AGGREGATE_MINOR, "credits": MAX_AGGREGATE_MINOR},
            "USD": {"debits": 1000, "credits": 1000},
        },
        "balanced": True,
    }
    assert "Scan" not in called
    # Queries of the balance records, and one GetItem: the caller's tenant (functions/common/tenants.py)
    assert (set(called), called.count("GetItem")) == ({"Query", "GetItem"}, 1)


def test_a8_scheduled_payouts_read_the_due_index_without_a_scan(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    use_function_env("functions.payout.handler.scheduled_handler")
    payout = importlib.import_module("functions.payout.handler")
    payout._scheduled_ports.cache_clear()
    wallet_table = payout._scheduled_ports().balances.table_name
    wallet = DynamoWalletStore(wallet_table)

    # Given 30 credited orders (a marker each) for three sellers, one of them since emptied by a payout
    for n in range(30):
        assert wallet.credit_once(
            seller_id=f"seller_{n % 3}", currency="EUR", amount=1_000, applied_marker=f"charge#po_{n}"
        )
    table(wallet_table).update_item(
        Key={keys.PARTITION_KEY: "seller_2", keys.SORT_KEY: keys.balance_key("EUR")},
        UpdateExpression="SET available = :zero, reserved = :all",
        ExpressionAttributeValues={":zero": 0, ":all": 10_000},
    )

    # (every seller has a payout account in EUR)
    accounts = DynamoSellerStore(payout._scheduled_ports().accounts.table_name)
    for seller in ("seller_0", "seller_1", "seller_2"):
        assert accounts.add_version(stored_account(seller, "EUR"), previous=None)

    # When the scheduled run fires (threshold 100 EUR = 10,000 minor units)
    with dynamodb_operations() as called:
        result = payout.scheduled_handler({"time": "2026-11-30T02:00:00Z"}, context())

    # Then the two sellers with money get a payout of all of it, read with no Scan
    started = {p.seller_id: p.amount for p in map(payout._scheduled_ports().store.get, result["payouts"]) if p}
    assert started == {"seller_0": 10_000, "seller_1": 10_000}
    assert result["waiting_for_account"] == 0
    assert "Scan" not in called
    assert "Query" in called
    # And the emptied balance left the index, while the others stay due
    due = WalletBalances(wallet_table)
    assert sorted(s for s, _, _ in due.balances_at_least(lambda currency: 1)) == ["seller_0", "seller_1"]
    stored = table(wallet_table).get_item(Key={keys.PARTITION_KEY: "seller_2", keys.SORT_KEY: keys.balance_key("EUR")})[
        "Item"
    ]
    assert keys.PAYOUT_DUE_ATTRIBUTE not in stored


def test_a8_the_backfill_rebuilds_balance_records_and_the_payout_due_index_of_an_older_stack(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    use_function_env("functions.ledger.handler.handler")
    use_function_env("functions.wallet.handler.handler")
    ledger = importlib.import_module("functions.ledger.handler")
    ledger._booking_ports.cache_clear()
    store = ledger._booking_ports().store
    balances = DynamoBalanceStore(store.balances_table)
    wallet_table = importlib.import_module("functions.wallet.handler")._credit_ports().store.table_name
    wallet = DynamoWalletStore(wallet_table)
    # Given charges booked and credited, then the balance records and index marks an older stack lacks
    charges = [_charge(f"po_b{n}", f"seller_{n % 2}", 2_500, currency="EUR") for n in range(6)]
    assert ledger.handler(sqs_event(*charges), context()) == {"batchItemFailures": []}
    for n in range(6):
        wallet.credit_once(seller_id=f"seller_{n % 2}", currency="EUR", amount=2_500, applied_marker=f"charge#po_b{n}")
    expected = _records(balances)
    for item in table(store.balances_table).scan()["Items"]:
        table(store.balances_table).delete_item(Key={"currency": item["currency"], "account": item["account"]})
    for seller in ("seller_0", "seller_1"):
        table(wallet_table).update_item(
            Key={keys.PARTITION_KEY: seller, keys.SORT_KEY: keys.balance_key("EUR")},
            UpdateExpression="REMOVE payout_due",
        )
    assert _records(balances) == {}
    assert list(WalletBalances(wallet_table).balances_at_least(lambda currency: 1)) == []

    # When the one-off backfill runs (what `payments backfill-balances` does)
    balances.replace_all(rebuilt(store.all_entries()))
    marked = wallet.mark_due_balances()

    # Then the records are the entries' sums again, and both sellers are due their 7,500
    assert _records(balances) == expected == _sums_of_entries(store)
    assert marked == 2
    assert sorted(WalletBalances(wallet_table).balances_at_least(lambda currency: 1)) == [
        ("seller_0", "EUR", 7_500),
        ("seller_1", "EUR", 7_500),
    ]
