"""The local cloud refuses what DynamoDB refuses: of many concurrent transactions that each apply one
marker once (a conditional Put) and add to a balance, exactly one succeeds. moto's threaded server alone
let several pass the condition before any wrote (a wallet credited twice under duplicate deliveries);
local_stack/moto_server.py serializes moto's DynamoDB backend."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from local_stack.stack import LocalStack
from tests.support.api import unique

ATTEMPTS = 24


def test_concurrent_conditional_transactions_apply_once(stack: LocalStack, aws: Any) -> None:
    assert stack.cloud is not None
    wallet_table = next(
        r.ref
        for r in stack.cloud.physical.values()
        if r.type == "AWS::DynamoDB::Table" and "WalletTable" in r.logical_id
    )
    seller = unique("seller")
    dynamodb = aws("dynamodb")
    key_names = [k["AttributeName"] for k in dynamodb.describe_table(TableName=wallet_table)["Table"]["KeySchema"]]
    partition, sort = key_names

    def credit(_: int) -> bool:
        client = aws("dynamodb")  # one client per thread, as each worker has its own
        try:
            client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": wallet_table,
                            "Item": {partition: {"S": seller}, sort: {"S": "APPLIED#charge#po_race"}},
                            "ConditionExpression": f"attribute_not_exists({sort})",
                        }
                    },
                    {
                        "Update": {
                            "TableName": wallet_table,
                            "Key": {partition: {"S": seller}, sort: {"S": "BALANCE#USD"}},
                            "UpdateExpression": "ADD available :amount",
                            "ExpressionAttributeValues": {":amount": {"N": "1000"}},
                        }
                    },
                ]
            )
        except ClientError as error:
            assert error.response["Error"]["Code"] == "TransactionCanceledException", error.response
            return False
        return True

    with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
        applied = list(pool.map(credit, range(ATTEMPTS)))

    balance = dynamodb.get_item(
        TableName=wallet_table, Key={partition: {"S": seller}, sort: {"S": "BALANCE#USD"}}, ConsistentRead=True
    )["Item"]
    assert (applied.count(True), balance["available"]["N"]) == (1, "1000")
