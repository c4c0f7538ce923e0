"""DynamoDB write request units as AWS bills them, counted inside the local cloud (the cost benchmark).

A client sees only its request; the bill depends on the stored item. So the moto server, when metering,
wraps its DynamoDB backend's writes and compares each item before and after:
- a write costs ceil(size / 1 KB) WRU (at least 1) of the larger of the item before and after it;
- a conditional write whose condition fails still costs the item's size;
- a transaction costs twice that for every item it names, ConditionCheck included, whether it commits
  or is cancelled;
- every global secondary index the item is in, before or after, is written as well: a put or a delete
  of the index entry costs its size, an index key that changes costs both (delete + put), a change to
  a projected attribute costs one write, and a change to nothing projected costs nothing. An index
  entry's size is its projected attributes plus 100 bytes
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations).
Item sizes come from moto's own (names plus values, in bytes)."""

from __future__ import annotations

import copy
import inspect
import json
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from moto.dynamodb.exceptions import ConditionalCheckFailed, TransactionCanceledException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import SecondaryIndex, Table

KB = 1024
INDEX_ENTRY_OVERHEAD_BYTES = 100
TRANSACTION_FACTOR = 2
METERED_WRITES = ("put_item", "update_item", "delete_item")
_OPERATION = {"put_item": "PutItem", "update_item": "UpdateItem", "delete_item": "DeleteItem"}

Record = Callable[[dict[str, Any]], None]


def write_units(size_bytes: int) -> int:
    return max(1, math.ceil(size_bytes / KB))


def item_write_units(before: Item | None, after: Item | None) -> int:
    return write_units(max(before.size() if before else 0, after.size() if after else 0))


def _in_index(index: SecondaryIndex, item: Item | None) -> bool:
    return item is not None and all(name in item.attrs for name in index.schema_key_attrs)


def _entry_units(index: SecondaryIndex, item: Item) -> int:
    return write_units(index.project(item).size() + INDEX_ENTRY_OVERHEAD_BYTES)


def index_write_units(index: SecondaryIndex, before: Item | None, after: Item | None) -> int:
    """What writing one item costs in one global secondary index."""
    was, now = _in_index(index, before), _in_index(index, after)
    if before is not None and was and not now:
        return _entry_units(index, before)
    if after is not None and now and not was:
        return _entry_units(index, after)
    if before is None or after is None or not (was and now):
        return 0
    if any(before.attrs[name] != after.attrs[name] for name in index.schema_key_attrs):
        return _entry_units(index, before) + _entry_units(index, after)
    if index.project(before).to_json() == index.project(after).to_json():
        return 0
    return _entry_units(index, after)


def indexes_write_units(table: Table, before: Item | None, after: Item | None) -> dict[str, int]:
    """Units per global secondary index the write touched."""
    touched = {index.name: index_write_units(index, before, after) for index in table.global_indexes}
    return {name: units for name, units in touched.items() if units}


def _key_of(table: Table, attributes: dict[str, Any]) -> dict[str, Any]:
    key = {table.hash_key_attr: attributes[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attributes[table.range_key_attr]
    return key


def _snapshot(backend: DynamoDBBackend, table: Table, key: dict[str, Any]) -> Item | None:
    """The stored item as it is now (moto updates items in place, so a reference would change with it)."""
    return copy.deepcopy(backend.get_item(table.name, key))


def _has_key(table: Table, attributes: dict[str, Any]) -> bool:
    return table.hash_key_attr in attributes and (table.range_key_attr is None or table.range_key_attr in attributes)


def _well_formed(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> bool:
    """Each entry names one known operation on a known table with its item's key (else moto refuses the
    request, and AWS bills nothing for it)."""
    for entry in transact_items:
        if len(entry) != 1:
            return False
        op_type, op = next(iter(entry.items()))
        located = "Item" if op_type == "Put" else "Key"
        if op_type not in ("ConditionCheck", "Put", "Delete", "Update") or "TableName" not in op or located not in op:
            return False
        if op["TableName"] not in backend.tables or not _has_key(backend.tables[op["TableName"]], op[located]):
            return False
    return True


class DynamoDBWriteMeter:
    """Wraps the backend's write methods; each write appends one record to the call log."""

    def __init__(self, record: Record) -> None:
        self._record = record
        self._in_transaction = threading.local()

    @classmethod
    def to_file(cls, path: str) -> DynamoDBWriteMeter:
        log: IO[str] = Path(path).open("a", buffering=1)  # noqa: SIM115 - lives as long as the server
        lock = threading.Lock()

        def record(entry: dict[str, Any]) -> None:
            with lock:
                log.write(json.dumps(entry) + "\n")

        return cls(record)

    def _emit(self, table: Table, operation: str, units: int, indexes: dict[str, int]) -> None:
        entry = {"kind": "dynamodb_write", "table": table.name, "operation": operation}
        self._record({**entry, "wru": units, "index_wru": sum(indexes.values()), "indexes": indexes})

    def wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        if name == "transact_write_items":
            return self._wrap_transaction(method)
        if name in METERED_WRITES:
            return self._wrap_write(name, method)
        return method

    def _wrap_write(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(method)
        operation = _OPERATION[name]

        def write(backend: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
            if getattr(self._in_transaction, "active", False):
                return method(backend, *args, **kwargs)  # counted by the transaction
            arguments = signature.bind(backend, *args, **kwargs).arguments
            table = backend.get_table(arguments["table_name"])
            if name == "put_item" and not _has_key(table, arguments["item_attrs"]):
                return method(backend, *args, **kwargs)  # refused by moto's own checks, unbilled as in AWS
            key = _key_of(table, arguments["item_attrs"]) if name == "put_item" else arguments["key"]
            before = _snapshot(backend, table, key)
            try:
                result = method(backend, *args, **kwargs)
            except ConditionalCheckFailed:
                self._emit(table, operation, item_write_units(before, None), {})
                raise
            after = backend.get_item(table.name, key)
            self._emit(table, operation, item_write_units(before, after), indexes_write_units(table, before, after))
            return result

        return write

    def _emit_transaction(
        self, backend: DynamoDBBackend, named: list[tuple[Table, dict[str, Any], Item | None]]
    ) -> None:
        for table, key, before in named:
            after = backend.get_item(table.name, key)
            units = TRANSACTION_FACTOR * item_write_units(before, after)
            self._emit(table, "TransactWriteItems", units, indexes_write_units(table, before, after))

    def _wrap_transaction(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def transact(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> Any:
            if not _well_formed(backend, transact_items):
                return method(backend, transact_items)  # refused by moto's own checks, as it would be
            named: list[tuple[Table, dict[str, Any], Item | None]] = []
            for entry in transact_items:
                op_type, op = next(iter(entry.items()))
                table = backend.get_table(op["TableName"])
                key = _key_of(table, op["Item"]) if op_type == "Put" else op["Key"]
                named.append((table, key, _snapshot(backend, table, key)))
            self._in_transaction.active = True
            try:
                result = method(backend, transact_items)
            except TransactionCanceledException:
                self._emit_transaction(backend, named)  # cancelled by a condition: billed in AWS too
                raise
            finally:
                self._in_transaction.active = False
            self._emit_transaction(backend, named)  # (a request refused as invalid is not billed)
            return result

        return transact
