"""Read-only adapters of the money auditor, in each owner's key layout (functions/wallet/keys.py, the
executor's indexes in functions/common/decided_index.py and functions/executor/store.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from boto3.dynamodb.conditions import Key

from functions.auditor.models import OrderRecord, WalletBalance
from functions.common import decided_index
from functions.common.aws import client
from functions.common.clock import iso
from functions.common.dynamo import items, plain, table
from functions.common.money import CURRENCY_EXPONENTS
from functions.executor.store import OPEN_BUCKET, OPEN_INDEX
from functions.refund.models import REFUNDS_BY_STATUS
from functions.refund.store import charge_key
from functions.wallet import keys


class DynamoWallets:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def due_sellers(self) -> Iterator[tuple[str, str]]:
        for currency in sorted(CURRENCY_EXPONENTS):
            condition = Key(keys.PAYOUT_DUE_ATTRIBUTE).eq(currency)
            for item in items(self.table_name, IndexName=keys.PAYOUT_DUE_INDEX, KeyConditionExpression=condition):
                yield str(item[keys.PARTITION_KEY]), currency

    def balance(self, seller_id: str, currency: str) -> WalletBalance:
        key = {keys.PARTITION_KEY: seller_id, keys.SORT_KEY: keys.balance_key(currency)}
        item = table(self.table_name).get_item(Key=key, ConsistentRead=True).get("Item")
        return WalletBalance.model_validate(plain(item or {}))

    def credited(self, seller_id: str, payment_order_id: str) -> bool:
        # The wallet's applied-marker of a charge (functions/wallet/domain.py: credit_order)
        key = {keys.PARTITION_KEY: seller_id, keys.SORT_KEY: keys.applied_key(keys.charge_marker(payment_order_id))}
        return "Item" in table(self.table_name).get_item(Key=key, ConsistentRead=True)


class DynamoOrders:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def _decided(self, index: str, attribute: str, start: datetime, end: datetime) -> Iterator[OrderRecord]:
        between = Key(decided_index.SORT_KEY).between(decided_index.sort_bound(start), decided_index.sort_bound(end))
        for shard in decided_index.shards_between(start, end):
            condition = Key(attribute).eq(shard) & between
            for item in items(self.table_name, IndexName=index, KeyConditionExpression=condition):
                yield OrderRecord.model_validate(plain(item))

    def succeeded_between(self, start: datetime, end: datetime) -> Iterator[OrderRecord]:
        return self._decided(decided_index.INDEX, decided_index.ATTRIBUTE, start, end)

    def failed_between(self, start: datetime, end: datetime) -> Iterator[OrderRecord]:
        return self._decided(decided_index.FAILED_INDEX, decided_index.FAILED_ATTRIBUTE, start, end)

    def order(self, payment_order_id: str) -> OrderRecord | None:
        item = table(self.table_name).get_item(Key={"payment_order_id": payment_order_id}, ConsistentRead=True)
        return None if "Item" not in item else OrderRecord.model_validate(plain(item["Item"]))

    def open_before(self, cutoff: datetime) -> Iterator[OrderRecord]:
        condition = Key("open_bucket").eq(OPEN_BUCKET) & Key("open_since").lt(iso(cutoff))
        for item in items(self.table_name, IndexName=OPEN_INDEX, KeyConditionExpression=condition):
            yield OrderRecord.model_validate(plain(item))


class SqsDeadLetterQueues:
    def __init__(self, queue_urls: list[str]) -> None:
        self.queue_urls = queue_urls

    def depths(self) -> dict[str, int]:
        depths = {}
        for url in self.queue_urls:
            attributes = client("sqs").get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            depths[url.rsplit("/", 1)[-1]] = sum(int(value) for value in attributes.values())
        return depths


class DynamoRefundTotals:
    """What our refunds hold of each order's charge: the refund service's charge record, by GetItem."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def refunded(self, payment_order_id: str) -> int | None:
        item = table(self.table_name).get_item(Key=charge_key(payment_order_id), ConsistentRead=True).get("Item")
        return None if item is None else int(item.get("refunded", 0))

    def orders_refunded_between(self, start: datetime, end: datetime) -> Iterator[str]:
        # The refunds table's status index (functions/refund/models.py): only refund items have a status.
        for status in ("SUCCEEDED", "FAILED"):
            condition = Key("status").eq(status) & Key("updated_at").between(iso(start), iso(end))
            for item in items(
                self.table_name,
                IndexName=REFUNDS_BY_STATUS,
                KeyConditionExpression=condition,
                ProjectionExpression="payment_order_id",
            ):
                yield str(item["payment_order_id"])
