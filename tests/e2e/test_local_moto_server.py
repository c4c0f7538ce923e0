"""The local cloud's moto server keeps every committed DynamoDB write while transactions fail around it.

moto alone loses them: a failed TransactWriteItems puts back a snapshot of its tables taken when it began,
erasing what other requests wrote meanwhile (a soak under faults lost a wallet credit so). The local stack runs
moto through local_stack.moto_server, which serializes the DynamoDB backend. The stack's stream poller reads each
shard on from the last read's NextShardIterator, which sees every later record only because a failed
transaction is rolled back in place (on stock moto the same reads see a phantom write and lose a record)."""

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

from local_stack.chaos import Chaos
from local_stack.deploy import EventSourceMapping
from local_stack.loopback import stop_process
from local_stack.pollers import StreamPoller
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


class _Recorded:
    """A function that takes every stream record it is handed, in order (its `chaos`: one delivery each)."""

    def __init__(self) -> None:
        self.chaos = Chaos()
        self.meter = None
        self.keys: list[str] = []

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        self.keys += [f"{r['eventName']}:{r['dynamodb']['Keys']['pk']['S']}" for r in event["Records"]]
        return {"batchItemFailures": []}


def test_the_stream_poller_reads_every_record_once_in_order_across_idle_reads_and_failed_transactions(
    dynamodb: Any,
) -> None:
    # Given a table with a stream on the local cloud's moto server, and a poller on it
    dynamodb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    arn = dynamodb.describe_table(TableName="orders")["Table"]["LatestStreamArn"]
    streams = boto3.client(
        "dynamodbstreams",
        endpoint_url=dynamodb.meta.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    function = _Recorded()
    mapping = EventSourceMapping(
        function="f", source_arn=arn, kind="dynamodb", batch_size=2, report_batch_item_failures=True
    )
    poller = StreamPoller(
        mapping,
        cloud=None,  # type: ignore[arg-type]  # no on-failure destination: every record succeeds
        lambdas=function,  # type: ignore[arg-type]
        streams=streams,
        sqs=None,
        stop=threading.Event(),
        retry_delay=0,
    )

    def put(key: str) -> None:
        dynamodb.put_item(TableName="orders", Item={"pk": {"S": key}})

    def failed_transaction() -> None:
        with pytest.raises(ClientError):
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "orders", "Item": {"pk": {"S": "phantom"}}}},
                    {
                        "ConditionCheck": {
                            "TableName": "orders",
                            "Key": {"pk": {"S": "missing"}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )

    # When records arrive before a read, between idle reads, around failed transactions, more than a batch
    put("a")
    put("b")
    put("c")
    reads = [poller.poll_once(), poller.poll_once(), poller.poll_once(), poller.poll_once()]
    failed_transaction()
    put("d")
    failed_transaction()
    reads += [poller.poll_once(), poller.poll_once()]
    put("e")
    dynamodb.delete_item(TableName="orders", Key={"pk": {"S": "a"}})
    reads += [poller.poll_once(), poller.poll_once()]

    # Then each record was read once, in order, and no failed transaction's write was ever seen
    assert function.keys == ["INSERT:a", "INSERT:b", "INSERT:c", "INSERT:d", "INSERT:e", "REMOVE:a"]
    assert reads == [2, 1, 0, 0, 1, 0, 2, 0]
