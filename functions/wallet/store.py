"""DynamoDB adapter for wallets: pk seller_id; sk BALANCE#<currency> or APPLIED#<marker>."""

from __future__ import annotations

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from functions.common.aws import client
from functions.common.dynamo import is_condition_failure, plain, table
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
                                "seller_id": {"S": seller_id},
                                "sk": {"S": f"APPLIED#{applied_marker}"},
                                "amount": {"N": str(amount)},
                                "currency": {"S": currency},
                            },
                            "ConditionExpression": "attribute_not_exists(sk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": {"seller_id": {"S": seller_id}, "sk": {"S": f"BALANCE#{currency}"}},
                            "UpdateExpression": "ADD available :amount SET reserved = if_not_exists(reserved, :zero)",
                            "ExpressionAttributeValues": {":amount": {"N": str(amount)}, ":zero": {"N": "0"}},
                        }
                    },
                ]
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def balances(self, seller_id: str) -> dict[str, Balance]:
        items = table(self.table_name).query(
            KeyConditionExpression=Key("seller_id").eq(seller_id) & Key("sk").begins_with("BALANCE#"),
            ConsistentRead=True,
        )["Items"]
        return {item["sk"].removeprefix("BALANCE#"): Balance.model_validate(plain(item)) for item in items}
