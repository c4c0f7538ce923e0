"""DynamoDB adapter for the ledger: one item per entry, written only with Put + attribute_not_exists, and
one balance record per account and currency (functions.ledger.balances), moved in the same transaction.

The ledger functions' IAM roles have no UpdateItem/DeleteItem on the entries table: append-only is
enforced by IAM. They may update the balances table, and only through the transaction that appends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from functions.common.aws import client
from functions.common.dynamo import is_condition_failure, items, plain, table
from functions.common.money import CURRENCY_EXPONENTS
from functions.ledger import balances
from functions.ledger.balances import AccountBalance
from functions.ledger.domain import Entry

BY_ACCOUNT_INDEX = "by_account"
BY_PAYMENT_ORDER_INDEX = "by_payment_order"
_serialize = TypeSerializer().serialize


def _balance_update(table_name: str, change: AccountBalance, journal_id: str) -> dict[str, Any]:
    shard = balances.record_key(change.account, journal_id)
    return {
        "Update": {
            "TableName": table_name,
            "Key": {balances.PARTITION_KEY: {"S": change.currency}, balances.SORT_KEY: {"S": shard}},
            "UpdateExpression": "ADD debits :debits, credits :credits",
            "ExpressionAttributeValues": {
                ":debits": {"N": str(change.debits)},
                ":credits": {"N": str(change.credits)},
            },
        }
    }


class DynamoLedgerStore:
    def __init__(self, table_name: str, balances_table: str) -> None:
        self.table_name = table_name
        self.balances_table = balances_table

    def append(self, entries: Sequence[Entry]) -> bool:
        puts = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {k: _serialize(v) for k, v in e.model_dump(exclude_none=True).items()},
                    "ConditionExpression": "attribute_not_exists(entry_id)",
                }
            }
            for e in entries
        ]
        # The balances move only if every entry is new: a repeated journal cancels the whole transaction.
        updates = [
            _balance_update(self.balances_table, change, entries[0].journal_id)
            for change in balances.movements(entries)
        ]
        try:
            client("dynamodb").transact_write_items(TransactItems=puts + updates)
        except ClientError as error:
            if is_condition_failure(error):
                return False  # the journal is already booked: ids are deterministic
            raise
        return True

    def _query(self, index: str, key: str, value: str) -> list[Entry]:
        found = items(self.table_name, IndexName=index, KeyConditionExpression=Key(key).eq(value))
        entries = [Entry.model_validate(plain(i)) for i in found]
        return sorted(entries, key=lambda e: (e.created_at, e.entry_id))

    def by_account(self, account: str) -> list[Entry]:
        return self._query(BY_ACCOUNT_INDEX, "account", account)

    def by_payment_order(self, payment_order_id: str) -> list[Entry]:
        return self._query(BY_PAYMENT_ORDER_INDEX, "payment_order_id", payment_order_id)

    def all_entries(self) -> Iterator[Entry]:
        """Every entry, by a Scan: for the one-off balance backfill and tests, never a request path."""
        for item in items(self.table_name, "scan", ConsistentRead=True):
            yield Entry.model_validate(plain(item))


class DynamoBalanceStore:
    """Reads the balance records: one Query per accepted currency, each O(accounts x shards)."""

    def __init__(self, balances_table: str) -> None:
        self.balances_table = balances_table

    def _summed(self, condition: Any) -> list[AccountBalance]:
        shards = items(self.balances_table, KeyConditionExpression=condition, ConsistentRead=True)
        return balances.summed(
            AccountBalance(
                currency=str(item[balances.PARTITION_KEY]),
                account=balances.account_of(str(item[balances.SORT_KEY])),
                debits=int(item.get("debits", 0)),
                credits=int(item.get("credits", 0)),
            )
            for item in shards
        )

    def in_currency(self, currency: str) -> list[AccountBalance]:
        return self._summed(Key(balances.PARTITION_KEY).eq(currency))

    def all_balances(self) -> Iterator[AccountBalance]:
        for currency in sorted(CURRENCY_EXPONENTS):
            yield from self.in_currency(currency)

    def balance(self, account: str, currency: str) -> AccountBalance:
        condition = Key(balances.PARTITION_KEY).eq(currency) & Key(balances.SORT_KEY).begins_with(
            balances.shard_prefix(account)
        )
        found = [b for b in self._summed(condition) if b.account == account]
        return found[0] if found else AccountBalance(currency=currency, account=account)

    def replace_all(self, records: Sequence[AccountBalance]) -> None:
        """Replace every record by the given ones, each on shard 0 (the backfill, run while the ledger's
        consumers are paused)."""
        with table(self.balances_table).batch_writer() as batch:
            for currency in sorted(CURRENCY_EXPONENTS):
                condition = Key(balances.PARTITION_KEY).eq(currency)
                for item in items(self.balances_table, KeyConditionExpression=condition):
                    batch.delete_item(
                        Key={balances.PARTITION_KEY: currency, balances.SORT_KEY: item[balances.SORT_KEY]}
                    )
        with table(self.balances_table).batch_writer() as batch:
            for record in records:
                batch.put_item(
                    Item={
                        balances.PARTITION_KEY: record.currency,
                        balances.SORT_KEY: f"{balances.shard_prefix(record.account)}0",
                        "debits": record.debits,
                        "credits": record.credits,
                    }
                )
