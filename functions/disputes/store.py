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
from functions.common.dynamo import cancellation_codes, is_condition_failure, items, plain, table
from functions.disputes.models import Dispute
from functions.wallet import writes
from functions.wallet.store import HOLD_RACE_ATTEMPTS, DynamoWalletStore, HoldChanged

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

    def _transact(self, items_: list[dict[str, Any]], *, hold_changes: bool) -> bool:
        """False if the dispute's own condition failed (already opened, or no longer OPEN); HoldChanged if
        only the hold's did (a refund or release in between: read it again)."""
        try:
            client("dynamodb").transact_write_items(TransactItems=items_)
        except ClientError as error:
            codes = cancellation_codes(error)
            if hold_changes and codes[:2] == ["None", "ConditionalCheckFailed"]:
                raise HoldChanged("the order's hold changed since it was read") from error
            if is_condition_failure(error):
                return False
            raise
        return True

    def _held(self, dispute: Dispute) -> int | None:
        """What the order's hold still holds; None if the order is not held, released, or not credited."""
        hold = DynamoWalletStore(self.wallet_table).hold(dispute.seller_id, dispute.payment_order_id)
        return hold.pending if hold is not None and hold.status == writes.HELD else None

    def open_once(self, dispute: Dispute) -> bool:
        for _ in range(HOLD_RACE_ATTEMPTS):
            held = self._held(dispute) or 0
            taken = min(held, dispute.held)
            opened = dispute.model_copy(update={"from_pending": taken})
            transaction = [
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {k: _serialize(v) for k, v in opened.model_dump(exclude_none=True).items()},
                        "ConditionExpression": "attribute_not_exists(dispute_id)",
                    }
                }
            ]
            if taken:
                transaction.append(
                    writes.take_from_hold(
                        self.wallet_table, dispute.seller_id, dispute.payment_order_id, read=held, taken=taken
                    )
                )
            transaction.append(
                writes.balance_update(
                    self.wallet_table,
                    dispute.seller_id,
                    dispute.currency,
                    available=-(dispute.held - taken),
                    pending=-taken,
                    reserved=dispute.held,
                )
            )
            try:
                return self._transact(transaction, hold_changes=bool(taken))
            except HoldChanged:
                continue
        raise HoldChanged(f"the hold of {dispute.payment_order_id} kept changing; the dispute is retried")

    def close_once(self, dispute: Dispute) -> bool:
        for _ in range(HOLD_RACE_ATTEMPTS):
            given_back = dispute.amount if dispute.status == "WON" else 0
            # A won dispute gives the hold back what it took of it, while the hold lasts
            lasts = given_back > 0 and self._held(dispute) is not None
            to_pending = min(dispute.from_pending, given_back) if lasts else 0
            transaction = [
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"dispute_id": {"S": dispute.dispute_id}},
                        "UpdateExpression": "SET #status = :closed, closed_at = :closed_at, to_pending = :to_pending",
                        "ConditionExpression": "#status = :open",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {
                            ":closed": {"S": dispute.status},
                            ":closed_at": {"S": dispute.closed_at or ""},
                            ":open": {"S": "OPEN"},
                            ":to_pending": {"N": str(to_pending)},
                        },
                    }
                }
            ]
            if to_pending:
                transaction.append(
                    writes.give_to_hold(
                        self.wallet_table, dispute.seller_id, dispute.payment_order_id, given=to_pending
                    )
                )
            transaction.append(
                writes.balance_update(
                    self.wallet_table,
                    dispute.seller_id,
                    dispute.currency,
                    available=given_back - to_pending,
                    pending=to_pending,
                    reserved=-dispute.held,
                )
            )
            try:
                return self._transact(transaction, hold_changes=bool(to_pending))
            except HoldChanged:
                continue
        raise HoldChanged(f"the hold of {dispute.payment_order_id} kept changing; the dispute is retried")
