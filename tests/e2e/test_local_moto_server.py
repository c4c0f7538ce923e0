"""The local cloud's moto server keeps every committed DynamoDB write while transactions fail around it.

moto alone loses them: a failed TransactWriteItems puts back a snapshot of its tables taken when it began,
erasing what other requests wrote meanwhile (a soak under faults lost a wallet credit so). The local stack runs
moto through local_stack.moto_server, which serializes the DynamoDB backend."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_stack.loopback import stop_process
from tests.support.ports import free_port

WRITES = 300
TABLE = "race"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "local_stack.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client.list_tables()
                break
            except Exception:
                assert time.monotonic() < deadline, "moto did not start"
                time.sleep(0.2)
        yield client
    finally:
        stop_process(server, grace_seconds=5)


def test_failed_transactions_never_erase_concurrent_writes(dynamodb: Any) -> None:
    # Given a table with enough items that a transaction's snapshot takes a while
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(WRITES):
        dynamodb.put_item(TableName=TABLE, Item={"k": {"S": f"existing_{i}"}, "v": {"S": "x" * 200}})
    refused = []

    def write() -> None:
        for i in range(WRITES):
            dynamodb.put_item(TableName=TABLE, Item={"k": {"S": f"new_{i}"}})

    def fail_transactions() -> None:
        for _ in range(WRITES):
            try:
                dynamodb.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": TABLE,
                                "Item": {"k": {"S": "existing_0"}},
                                "ConditionExpression": "attribute_not_exists(k)",
                            }
                        }
                    ]
                )
            except ClientError as error:
                refused.append(error.response["Error"]["Code"])

    # When writes commit while conditional transactions on the same table fail
    threads = [threading.Thread(target=write), threading.Thread(target=fail_transactions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every transaction was refused and every committed write is still there
    assert refused == ["TransactionCanceledException"] * WRITES
    assert dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"] == 2 * WRITES


def _stream_records(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    endpoint = dynamodb.meta.endpoint_url
    streams = boto3.client(
        "dynamodbstreams",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records: list[dict[str, Any]] = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    return records


def test_a_failed_transaction_leaves_its_items_and_stream_as_they_were(dynamodb: Any) -> None:
    # Given a table with a stream and two items
    dynamodb.create_table(
        TableName="ledger",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    dynamodb.put_item(TableName="ledger", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "10"}})
    dynamodb.put_item(TableName="ledger", Item={"pk": {"S": "b"}, "sk": {"S": "1"}, "n": {"N": "20"}})
    before = dynamodb.scan(TableName="ledger")["Items"]

    # When a transaction puts a new item, updates one, deletes the other, and then fails its last condition
    # (on an item that is not there)
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "ledger", "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}}}},
                {
                    "Update": {
                        "TableName": "ledger",
                        "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                        "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Delete": {"TableName": "ledger", "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
                {
                    "ConditionCheck": {
                        "TableName": "ledger",
                        "Key": {"pk": {"S": "missing"}, "sk": {"S": "1"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )

    # Then it is refused with each item's reason, and the items and the stream are as they were
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [reason["Code"] for reason in refused.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert dynamodb.scan(TableName="ledger")["Items"] == before
    assert [r["eventName"] for r in _stream_records(dynamodb, "ledger")] == ["INSERT", "INSERT"]

    # And the same transaction without the failing condition commits all three writes, streamed
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "ledger", "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}}}},
            {
                "Update": {
                    "TableName": "ledger",
                    "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                    "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {"Delete": {"TableName": "ledger", "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
        ]
    )
    after = sorted((item["pk"]["S"], item.get("n", {}).get("N")) for item in dynamodb.scan(TableName="ledger")["Items"])
    assert after == [("a", "11"), ("c", None)]
    events = [r["eventName"] for r in _stream_records(dynamodb, "ledger")]
    assert events == ["INSERT", "INSERT", "INSERT", "MODIFY", "REMOVE"]
