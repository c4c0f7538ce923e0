"""The cost benchmark's DynamoDB write units, counted by moto's backend as AWS bills them: item size before
and after, failed conditions, transactions at 2x, and global secondary index entries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_stack.dynamodb_meter import DynamoDBWriteMeter
from local_stack.moto_server import serialize_dynamodb

TABLE = "metered"


@pytest.fixture
def metered(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    records: list[dict[str, Any]] = []
    with mock_aws():
        serialize_dynamodb(monkeypatch.setattr, meter=DynamoDBWriteMeter(records.append))
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "due", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_due",
                    "KeySchema": [{"AttributeName": "due", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                },
                {
                    "IndexName": "by_owner",
                    "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                },
            ],
        )
        yield client, records


def units(records: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    assert all(r["index_wru"] == sum(r["indexes"].values()) for r in records)
    found = [(r["operation"], r["wru"], r["index_wru"]) for r in records]
    records.clear()
    return found


def test_a_write_costs_the_larger_of_the_item_before_and_after(metered: tuple[Any, list[dict[str, Any]]]) -> None:
    client, records = metered
    client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "payload": {"S": "x" * 2500}})
    client.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "a"}},
        UpdateExpression="SET n = :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    client.update_item(TableName=TABLE, Key={"pk": {"S": "a"}}, UpdateExpression="REMOVE payload")
    client.delete_item(TableName=TABLE, Key={"pk": {"S": "a"}})
    # 2.5 KB costs 3 units however small the request; the removal is billed on the item before it.
    assert units(records) == [("PutItem", 3, 0), ("UpdateItem", 3, 0), ("UpdateItem", 3, 0), ("DeleteItem", 1, 0)]


def test_a_failed_condition_is_billed_and_writes_no_index(metered: tuple[Any, list[dict[str, Any]]]) -> None:
    client, records = metered
    client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "owner": {"S": "o"}, "payload": {"S": "x" * 1500}})
    records.clear()
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(
            TableName=TABLE,
            Item={"pk": {"S": "a"}, "owner": {"S": "p"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert units(records) == [("PutItem", 2, 0)]


def test_index_entries_are_billed_by_what_changes_in_them(metered: tuple[Any, list[dict[str, Any]]]) -> None:
    client, records = metered
    key = {"pk": {"S": "a"}}

    def update(expression: str, **values: str) -> None:
        extra = {"ExpressionAttributeValues": {k: {"S": v} for k, v in values.items()}} if values else {}
        client.update_item(TableName=TABLE, Key=key, UpdateExpression=expression, **extra)

    client.put_item(TableName=TABLE, Item={**key, "owner": {"S": "o1"}})  # enters by_owner
    update("SET due = :d", **{":d": "2026-12-01"})  # enters by_due; by_owner (ALL) sees a new attribute
    update("SET note = :n", **{":n": "x"})  # by_owner (ALL) changes, by_due (KEYS_ONLY) does not
    update("SET due = :d", **{":d": "2026-12-02"})  # by_due's key moves: delete + put; by_owner changes
    assert records[-1]["indexes"] == {"by_due": 2, "by_owner": 1}
    update("REMOVE due, note")  # leaves by_due; by_owner changes
    client.delete_item(TableName=TABLE, Key=key)  # leaves by_owner
    assert units(records) == [
        ("PutItem", 1, 1),
        ("UpdateItem", 1, 2),
        ("UpdateItem", 1, 1),
        ("UpdateItem", 1, 3),
        ("UpdateItem", 1, 2),
        ("DeleteItem", 1, 1),
    ]


def test_a_transaction_costs_twice_for_every_item_it_names_committed_or_not(
    metered: tuple[Any, list[dict[str, Any]]],
) -> None:
    client, records = metered
    client.put_item(TableName=TABLE, Item={"pk": {"S": "guard"}})
    records.clear()
    items = [
        {
            "ConditionCheck": {
                "TableName": TABLE,
                "Key": {"pk": {"S": "guard"}},
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "b"}, "owner": {"S": "o"}}}},
    ]
    client.transact_write_items(TransactItems=items)
    assert units(records) == [("TransactWriteItems", 2, 0), ("TransactWriteItems", 2, 1)]
    items[0]["ConditionCheck"]["ConditionExpression"] = "attribute_not_exists(pk)"
    items[1]["Put"]["Item"]["pk"] = {"S": "c"}
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(TransactItems=items)
    # Cancelled: both items billed, nothing written to an index (c was never stored).
    assert units(records) == [("TransactWriteItems", 2, 0), ("TransactWriteItems", 2, 0)]
    assert "Item" not in client.get_item(TableName=TABLE, Key={"pk": {"S": "c"}})


def test_a_request_moto_refuses_is_refused_the_same_and_not_billed(metered: tuple[Any, list[dict[str, Any]]]) -> None:
    client, records = metered
    with pytest.raises(client.exceptions.ClientError, match="ValidationException"):
        client.put_item(TableName=TABLE, Item={"owner": {"S": "o"}})  # no key
    twice = {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "d"}}}}
    with pytest.raises(client.exceptions.ClientError, match="ValidationException"):
        client.transact_write_items(TransactItems=[twice, twice])  # one item twice in a transaction
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": {"owner": {"S": "o"}}}}])
    assert units(records) == []
    assert client.scan(TableName=TABLE)["Count"] == 0
