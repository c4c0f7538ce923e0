"""DynamoDB adapter for wallets, in the key layout of functions.wallet.keys."""

from __future__ import annotations

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from functions.common.aws import client
from functions.common.dynamo import is_condition_failure, items, plain, table
from functions.wallet import keys
from functions.wallet.domain import Balance


class DynamoWalletStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def credit_once(self, *, seller_id: str, currency: str, amount: int, applied_marker: str) -> bool:
        try:
            client("dynamodb").transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": {
                                keys.PARTITION_KEY: {"S": seller_id},
                                keys.SORT_KEY: {"S": keys.applied_key(applied_marker)},
                                "amount": {"N": str(amount)},
                                "currency": {"S": currency},
                            },
                            "ConditionExpression": f"attribute_not_exists({keys.SORT_KEY})",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": {
                                keys.PARTITION_KEY: {"S": seller_id},
                                keys.SORT_KEY: {"S": keys.balance_key(currency)},
                            },
                            # A credit makes the seller due a payout: it enters the sparse index.
                            "UpdateExpression": (
                                "ADD available :amount SET reserved = if_not_exists(reserved, :zero), #due = :currency"
                            ),
                            "ExpressionAttributeNames": {"#due": keys.PAYOUT_DUE_ATTRIBUTE},
                            "ExpressionAttributeValues": {
                                ":amount": {"N": str(amount)},
                                ":zero": {"N": "0"},
                                ":currency": {"S": currency},
                            },
                        }
                    },
                ]
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def debit_once(self, *, seller_id: str, currency: str, amount: int, applied_marker: str) -> bool:
        """Debit and record the marker atomically; False if the marker existed. `available` may go negative
        (a refund of money already paid out): payouts are refused until it is positive again."""
        return self.credit_once(seller_id=seller_id, currency=currency, amount=-amount, applied_marker=applied_marker)

    def balances(self, seller_id: str) -> dict[str, Balance]:
        items = table(self.table_name).query(
            KeyConditionExpression=Key(keys.PARTITION_KEY).eq(seller_id)
            & Key(keys.SORT_KEY).begins_with(keys.BALANCE_PREFIX),
            ConsistentRead=True,
        )["Items"]
        return {keys.currency_of(item[keys.SORT_KEY]): Balance.model_validate(plain(item)) for item in items}

    def mark_due_balances(self) -> int:
        """Put every balance with money on the payout-due index: the one-off backfill for balances credited
        before the index existed (a Scan, run once by `payments backfill-balances`, never on a schedule)."""
        marked = 0
        found = items(
            self.table_name,
            "scan",
            FilterExpression=Attr(keys.SORT_KEY).begins_with(keys.BALANCE_PREFIX) & Attr("available").gt(0),
            ProjectionExpression=f"{keys.PARTITION_KEY}, {keys.SORT_KEY}",
        )
        for item in found:
            currency = keys.currency_of(str(item[keys.SORT_KEY]))
            table(self.table_name).update_item(
                Key={keys.PARTITION_KEY: item[keys.PARTITION_KEY], keys.SORT_KEY: item[keys.SORT_KEY]},
                UpdateExpression="SET #due = :currency",
                ExpressionAttributeNames={"#due": keys.PAYOUT_DUE_ATTRIBUTE},
                ExpressionAttributeValues={":currency": currency},
            )
            marked += 1
        return marked
