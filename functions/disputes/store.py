"""DynamoDB adapter of the disputes: the disputes table (partition `dispute_id`; index BY_PAYMENT_ORDER_INDEX
on `payment_order_id`), and the seller's wallet balance each state change moves in the same transaction
(the wallet's key layout: functions/wallet/keys.py).

Every state change of a dispute is a write of its item (created OPEN, then WON or LOST), so the table's
stream carries exactly one change per dispute.created and dispute.closed."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from functions.common.aws import client
from functions.common.dynamo import is_condition_failure, items, plain, table
from functions.disputes.models import Dispute
from functions.wallet import keys as wallet_keys

BY_PAYMENT_ORDER_INDEX = "by_payment_order"
_serialize = TypeSerializer().serialize


class DynamoDisputeReader:
    """The API's reads: one item by id, or an order's disputes by the index (never a Scan)."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def get(self, dispute_id: str) -> Dispute | None:
        item = table(self.table_name).get_item(Key={"dispute_id": dispute_id}, ConsistentRead=True).get("Item")
        return None if item is None else Dispute.model_validate(plain(item))

    def by_payment_order(self, payment_order_id: str) -> list[Dispute]:
        found = items(
            self.table_name,
            IndexName=BY_PAYMENT_ORDER_INDEX,
            KeyConditionExpression=Key("payment_order_id").eq(payment_order_id),
        )
        return sorted((Dispute.model_validate(plain(i)) for i in found), key=lambda d: (d.created_at, d.dispute_id))


class DynamoDisputeStore(DynamoDisputeReader):
    """The worker's writes: each state change of a dispute and its wallet change in one transaction."""

    def __init__(self, table_name: str, wallet_table: str) -> None:
        super().__init__(table_name)
        self.wallet_table = wallet_table

    def _wallet_update(self, dispute: Dispute, *, available: int, reserved: int) -> dict[str, Any]:
        expression = "ADD available :available, reserved :reserved"
        values = {":available": {"N": str(available)}, ":reserved": {"N": str(reserved)}}
        names: dict[str, str] = {}
        if available > 0:
            # A write that raises `available` puts the balance on the payout-due index (wallet keys).
            expression += " SET #due = :currency"
            names["#due"] = wallet_keys.PAYOUT_DUE_ATTRIBUTE
            values[":currency"] = {"S": dispute.currency}
        update: dict[str, Any] = {
            "TableName": self.wallet_table,
            "Key": {
                wallet_keys.PARTITION_KEY: {"S": dispute.seller_id},
                wallet_keys.SORT_KEY: {"S": wallet_keys.balance_key(dispute.currency)},
            },
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        return {"Update": update}

    def _transact(self, items_: list[dict[str, Any]]) -> bool:
        try:
            client("dynamodb").transact_write_items(TransactItems=items_)
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def open_once(self, dispute: Dispute) -> bool:
        put = {
            "Put": {
                "TableName": self.table_name,
                "Item": {k: _serialize(v) for k, v in dispute.model_dump(exclude_none=True).items()},
                "ConditionExpression": "attribute_not_exists(dispute_id)",
            }
        }
        return self._transact([put, self._wallet_update(dispute, available=-dispute.held, reserved=dispute.held)])

    def close_once(self, dispute: Dispute) -> bool:
        given_back = dispute.amount if dispute.status == "WON" else 0
        update = {
            "Update": {
                "TableName": self.table_name,
                "Key": {"dispute_id": {"S": dispute.dispute_id}},
                "UpdateExpression": "SET #status = :closed, closed_at = :closed_at",
                "ConditionExpression": "#status = :open",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":closed": {"S": dispute.status},
                    ":closed_at": {"S": dispute.closed_at or ""},
                    ":open": {"S": "OPEN"},
                },
            }
        }
        return self._transact([update, self._wallet_update(dispute, available=given_back, reserved=-dispute.held)])
