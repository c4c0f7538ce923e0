"""The local cloud's moto server keeps every committed DynamoDB write while transactions fail around it.

moto alone loses them: a failed TransactWriteItems puts back a snapshot of its tables taken when it began,
erasing what other requests wrote meanwhile (the soak lost a wallet credit that way). The local stack runs
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
