"""The wallet's transaction items, built once for every writer of the wallet table: the wallet's own
workers (functions/wallet/store.py) and the disputes worker (functions/disputes/store.py), which moves a
seller's balance in the same transaction as its dispute record. Pure: items for TransactWriteItems."""

from __future__ import annotations

from typing import Any

from functions.wallet import keys

HELD = "HELD"


def balance_update(
    table_name: str, seller_id: str, currency: str, *, available: int, pending: int = 0, reserved: int = 0
) -> dict[str, Any]:
    """Add to a balance's buckets (a negative number takes). A write that raises `available` puts the balance
    on the payout-due index (functions/wallet/keys.py)."""
    adds = ["available :available"]
    sets: list[str] = []
    values: dict[str, Any] = {":available": {"N": str(available)}}
    names: dict[str, str] = {}
    if reserved:
        adds.append("reserved :reserved")
        values[":reserved"] = {"N": str(reserved)}
    else:
        sets.append("reserved = if_not_exists(reserved, :zero)")
        values[":zero"] = {"N": "0"}
    if pending:
        adds.append("pending :pending")
        values[":pending"] = {"N": str(pending)}
    if available > 0:
        sets.append("#due = :currency")
        names["#due"] = keys.PAYOUT_DUE_ATTRIBUTE
        values[":currency"] = {"S": currency}
    expression = f"ADD {', '.join(adds)}" + (f" SET {', '.join(sets)}" if sets else "")
    update: dict[str, Any] = {
        "TableName": table_name,
        "Key": {keys.PARTITION_KEY: {"S": seller_id}, keys.SORT_KEY: {"S": keys.balance_key(currency)}},
        "UpdateExpression": expression,
        "ExpressionAttributeValues": values,
    }
    if names:
        update["ExpressionAttributeNames"] = names
    return {"Update": update}


def hold_key(seller_id: str, payment_order_id: str) -> dict[str, Any]:
    """The key of an order's charge marker, which is also its hold."""
    return {
        keys.PARTITION_KEY: {"S": seller_id},
        keys.SORT_KEY: {"S": keys.applied_key(keys.charge_marker(payment_order_id))},
    }


def take_from_hold(table_name: str, seller_id: str, payment_order_id: str, *, read: int, taken: int) -> dict[str, Any]:
    """Take from a HELD hold's pending share, on condition that it is still what was read: a release or
    another taker in between makes the transaction fail, and the caller reads again."""
    return {
        "Update": {
            "TableName": table_name,
            "Key": hold_key(seller_id, payment_order_id),
            "UpdateExpression": "SET pending = :left",
            "ConditionExpression": "hold_status = :held AND pending = :read",
            "ExpressionAttributeValues": {
                ":left": {"N": str(read - taken)},
                ":held": {"S": HELD},
                ":read": {"N": str(read)},
            },
        }
    }


def give_to_hold(table_name: str, seller_id: str, payment_order_id: str, *, given: int) -> dict[str, Any]:
    """Give back to a hold, on condition that it is still HELD (once released, the caller gives to
    `available` instead)."""
    return {
        "Update": {
            "TableName": table_name,
            "Key": hold_key(seller_id, payment_order_id),
            "UpdateExpression": "ADD pending :given",
            "ConditionExpression": "hold_status = :held",
            "ExpressionAttributeValues": {":given": {"N": str(given)}, ":held": {"S": HELD}},
        }
    }
