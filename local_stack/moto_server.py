"""moto's server with its DynamoDB backend made safe under concurrent requests, and transactions whose
cost does not grow with the tables.

moto (5.2.x) serves each request on its own thread without locking, and a TransactWriteItems that fails
(a condition check, as every idempotent repeat does) puts back a deep copy of each table it named, taken
when it started: any write another request committed meanwhile to one of those tables is silently lost.
A soak under faults found it (a wallet credit, reported applied, gone from the table). DynamoDB itself
never loses a committed write, so the local cloud serializes every call into the DynamoDB backend (and
into DynamoDB Streams, which reads the tables' stream records).

That deep copy is also taken by every transaction that succeeds, and it copies the whole table with every
stream record the table ever had: a transaction's cost grew with the tables, until a payment ran past its
Lambda timeout (the fuzzer's 5xx) and a soak of 1,000 checkouts would take hours. Under the lock, nothing
else runs while a transaction does, so a failed one need only put back what it wrote itself: the items it
names, as they were, and its tables' stream records from before it began."""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto import backends
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.server import main

from local_stack.dynamodb_meter import METERED_WRITES, DynamoDBWriteMeter
from local_stack.metering import CALL_LOG_ENV
from local_stack.moto_sqs import skip_message_counts_on_sends_and_receives

_BACKEND_LOCK = threading.RLock()
TRANSACTION_OPERATIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _BACKEND_LOCK:
            return method(*args, **kwargs)

    return call


@dataclass
class _UndoLog:
    """What a transaction is about to write: each item it names as it was before, and the length of each
    of its tables' stream, so that a failed transaction leaves the tables exactly as it found them."""

    items: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = field(default_factory=list)
    streams: dict[int, tuple[StreamShard, int]] = field(default_factory=dict)

    def remember(self, table: Table, hash_value: DynamoType, range_value: DynamoType | None) -> None:
        # An update changes the stored item in place: keep a copy of it (one item, not the table).
        self.items.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        shard = table.stream_shard
        if shard is not None and id(shard) not in self.streams:
            self.streams[id(shard)] = (shard, len(shard.items))

    def roll_back(self) -> None:
        for table, hash_value, range_value, previous in reversed(self.items):
            if range_value is not None:
                if previous is None:
                    table.items[hash_value].pop(range_value, None)
                else:
                    table.items[hash_value][range_value] = previous
            elif previous is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = previous  # type: ignore[assignment]  # moto: an item, or a dict by range
        for shard, length in self.streams.values():
            del shard.items[length:]


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems (5.2.x), the same checks and errors in the same order, with an undo log in
    place of a deep copy of every table named."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo = _UndoLog()
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in TRANSACTION_OPERATIONS:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition = get_filter_expression(condition_expression, names, values)
                if not condition.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                table = self.get_table(table_name)
                undo.remember(table, *self.get_keys_value(table, key))
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            undo.roll_back()
            raise
        except ConditionalCheckFailed as error:
            errors.append(("ConditionalCheckFailed", str(error.message), original_item))  # type: ignore[arg-type]
        except Exception as error:  # noqa: BLE001 - moto reports any other failure as the item's cancellation reason
            errors.append((type(error).__name__, str(error), original_item))  # type: ignore[arg-type]
    if any(code is not None for code, _, _ in errors):
        undo.roll_back()
        raise TransactionCanceledException(errors)


def serialize_dynamodb(
    patch: Callable[[Any, str, Any], None] = setattr, meter: DynamoDBWriteMeter | None = None
) -> None:
    """Every method of moto's DynamoDB and DynamoDB Streams backends runs under one lock (the data is one
    in-memory structure), and a transaction keeps an undo log instead of copying its tables. `patch` sets
    each method (a test passes `monkeypatch.setattr`, to undo it afterwards). With a `meter`, every write
    is metered inside the lock (so its before and after are its own)."""
    patch(DynamoDBBackend, "transact_write_items", transact_write_items)
    if meter is not None:
        for name in (*METERED_WRITES, "transact_write_items"):
            patch(DynamoDBBackend, name, meter.wrap(name, getattr(DynamoDBBackend, name)))
    for backend in (DynamoDBBackend, DynamoDBStreamsBackend):
        for name, member in list(vars(backend).items()):
            if inspect.isfunction(member) and not name.startswith("__"):
                patch(backend, name, _serialized(member))


def skip_per_request_overhead() -> None:
    """Two costs on every request that buy nothing here: werkzeug formats a log line per request (the local
    stack sends the server's output to /dev/null), and moto lists its own package's directory to find the
    service a request is for (the list never changes while the server runs). (Connections are not kept:
    werkzeug's server closes each one after its response, whatever the protocol version.)"""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    services = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: services


if __name__ == "__main__":
    call_log = os.environ.get(CALL_LOG_ENV)
    serialize_dynamodb(meter=DynamoDBWriteMeter.to_file(call_log) if call_log else None)
    skip_message_counts_on_sends_and_receives()
    skip_per_request_overhead()
    main()
