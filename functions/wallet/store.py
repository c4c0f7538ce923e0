"""DynamoDB adapter for wallets, in the key layout of functions.wallet.keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError
from pydantic import BaseModel

from functions.common.aws import client
from functions.common.backoff import TransientError
from functions.common.clock import iso, utc_now
from functions.common.dynamo import cancellation_codes, is_condition_failure, items, plain, table
from functions.wallet import keys, writes
from functions.wallet.domain import Balance
from functions.wallet.holds import HeldShare, Hold

# Reads and conditional writes of one hold before a racing refund or release is left to the queue's retry.
HOLD_RACE_ATTEMPTS = 5


class HoldChanged(TransientError):
    """The hold changed between its read and a write conditional on it: read again (transient)."""


class CreditNotStored(TransientError):
    """A refund's debit or restore that arrived before the wallet credited the order (the credit travels on
    another queue): retried until the credit lands, because only the credit says whether the order is held.
    Every refunded order was charged and so is credited: only an orphan charge is not, and its refund never
    reaches the wallet."""


class RestoreBeforeDebit(TransientError):
    """A held order's refund restore that arrived before the refund's debit: retried until the debit lands."""


class Movement(BaseModel):
    """A refund's wallet movement: whether this call applied it, and its part in the pending bucket."""

    applied_now: bool
    pending: int = 0


class DynamoWalletStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def credit_once(
        self,
        *,
        seller_id: str,
        currency: str,
        amount: int,
        applied_marker: str,
        held: HeldShare | None = None,
        pending: int = 0,
    ) -> bool:
        """Credit `amount` (a debit when negative), `pending` of it to the pending bucket and the rest to
        `available`, and record the marker, atomically; False if the marker existed (already applied).
        `held`: the marker is a held order's charge marker, so it also stores the hold (functions/wallet/keys)."""
        if held is not None:  # a held order's whole share waits in pending
            pending = amount
        marker = self._marker(seller_id, applied_marker, currency=currency, amount=amount, pending=pending, held=held)
        return self._apply(
            seller_id=seller_id,
            currency=currency,
            marker=marker,
            available=amount - pending,
            pending=pending,
        )

    def debit_once(self, *, seller_id: str, currency: str, amount: int, applied_marker: str) -> bool:
        """Debit and record the marker atomically; False if the marker existed. `available` may go negative
        (a refund of money already paid out): payouts are refused until it is positive again."""
        return self.credit_once(seller_id=seller_id, currency=currency, amount=-amount, applied_marker=applied_marker)

    def _marker(
        self, seller_id: str, applied_marker: str, *, currency: str, amount: int, pending: int, held: HeldShare | None
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            keys.PARTITION_KEY: {"S": seller_id},
            keys.SORT_KEY: {"S": keys.applied_key(applied_marker)},
            "amount": {"N": str(amount)},
            "currency": {"S": currency},
        }
        if pending:
            item["pending"] = {"N": str(pending)}
        if held is not None:
            item |= {
                "hold_status": {"S": "HELD"},
                "pending": {"N": str(amount)},
                keys.RELEASE_AFTER_ATTRIBUTE: {"S": held.release_after},
                keys.HOLD_DUE_ATTRIBUTE: {"S": held.due_day},
            }
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": f"attribute_not_exists({keys.SORT_KEY})",
            }
        }

    def _apply(
        self,
        *,
        seller_id: str,
        currency: str,
        marker: dict[str, Any],
        available: int,
        pending: int,
        hold_change: dict[str, Any] | None = None,
    ) -> bool:
        """The marker, the hold's change (if any) and the balance's, in one transaction. False if the marker
        existed; HoldChanged if the hold is no longer as read."""
        transaction = [marker] + ([hold_change] if hold_change else [])
        transaction.append(
            writes.balance_update(self.table_name, seller_id, currency, available=available, pending=pending)
        )
        try:
            client("dynamodb").transact_write_items(TransactItems=transaction)
        except ClientError as error:
            codes = cancellation_codes(error)
            if codes and codes[0] == "ConditionalCheckFailed":
                return False
            if hold_change is not None and len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise HoldChanged("the hold changed since it was read") from error
            if is_condition_failure(error):
                return False
            raise
        return True

    # -- holds -----------------------------------------------------------------------------------------------

    def _hold_item(self, seller_id: str, payment_order_id: str) -> dict[str, Any] | None:
        found = (
            table(self.table_name)
            .get_item(
                Key={
                    keys.PARTITION_KEY: seller_id,
                    keys.SORT_KEY: keys.applied_key(keys.charge_marker(payment_order_id)),
                },
                ConsistentRead=True,
            )
            .get("Item")
        )
        return None if found is None else plain(found)

    def hold(self, seller_id: str, payment_order_id: str) -> Hold | None:
        """The order's hold as stored (status NONE for an order credited without one); None if not credited."""
        item = self._hold_item(seller_id, payment_order_id)
        if item is None:
            return None
        return Hold(
            seller_id=seller_id,
            payment_order_id=payment_order_id,
            currency=item["currency"],
            status=item.get("hold_status", "NONE"),
            pending=item.get("pending", 0),
            released=item.get("released", 0),
        )

    def release_once(self, *, seller_id: str, payment_order_id: str, reason: str) -> Hold | None:
        for _ in range(HOLD_RACE_ATTEMPTS):
            hold = self.hold(seller_id, payment_order_id)
            if hold is None or hold.status != "HELD":
                return hold
            release = {
                "Update": {
                    "TableName": self.table_name,
                    "Key": writes.hold_key(seller_id, payment_order_id),
                    "UpdateExpression": "SET hold_status = :released, released = :pending, released_by = :reason, "
                    f"released_at = :now REMOVE {keys.HOLD_DUE_ATTRIBUTE}",
                    # Only as read: a refund that took from the hold meanwhile makes this read it again.
                    "ConditionExpression": "hold_status = :held AND pending = :pending",
                    "ExpressionAttributeValues": {
                        ":released": {"S": "RELEASED"},
                        ":held": {"S": "HELD"},
                        ":pending": {"N": str(hold.pending)},
                        ":reason": {"S": reason},
                        ":now": {"S": iso(utc_now())},
                    },
                }
            }
            transaction = [release]
            if hold.pending:
                transaction.append(
                    writes.balance_update(
                        self.table_name, seller_id, hold.currency, available=hold.pending, pending=-hold.pending
                    )
                )
            try:
                client("dynamodb").transact_write_items(TransactItems=transaction)
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
                continue
            return hold.model_copy(update={"status": "RELEASED", "released": hold.pending})
        raise HoldChanged(f"the hold of {payment_order_id} kept changing; the release is retried")

    def due_holds(self, due_day: str, *, until: str) -> Iterator[tuple[str, str]]:
        found = items(
            self.table_name,
            IndexName=keys.HOLD_DUE_INDEX,
            KeyConditionExpression=Key(keys.HOLD_DUE_ATTRIBUTE).eq(due_day)
            & Key(keys.RELEASE_AFTER_ATTRIBUTE).lte(until),
        )
        for item in found:
            marker = str(item[keys.SORT_KEY]).removeprefix(keys.APPLIED_PREFIX)
            yield str(item[keys.PARTITION_KEY]), marker.removeprefix(keys.charge_marker(""))

    # -- refunds of held orders ------------------------------------------------------------------------------

    def _applied(self, seller_id: str, applied_marker: str) -> dict[str, Any] | None:
        found = (
            table(self.table_name)
            .get_item(
                Key={keys.PARTITION_KEY: seller_id, keys.SORT_KEY: keys.applied_key(applied_marker)},
                ConsistentRead=True,
            )
            .get("Item")
        )
        return None if found is None else plain(found)

    def refund_debit_once(
        self, *, seller_id: str, currency: str, payment_order_id: str, amount: int, applied_marker: str
    ) -> Movement:
        """Debit a refund's seller part: first from what the order's hold still holds, the rest from
        `available`. The hold's change is conditional on it being as read, so a refund and a release of the
        same hold serialize. A redelivery moves nothing and reports the split the first delivery made."""
        for _ in range(HOLD_RACE_ATTEMPTS):
            hold = self._credited_hold(seller_id, payment_order_id, applied_marker)
            if isinstance(hold, Movement):
                return hold
            held = hold.pending if hold.status == "HELD" else 0
            from_pending = min(held, amount)
            change = None
            if from_pending:
                change = writes.take_from_hold(
                    self.table_name, seller_id, payment_order_id, read=held, taken=from_pending
                )
            marker = self._marker(
                seller_id, applied_marker, currency=currency, amount=-amount, pending=-from_pending, held=None
            )
            try:
                moved = self._apply(
                    seller_id=seller_id,
                    currency=currency,
                    marker=marker,
                    available=-(amount - from_pending),
                    pending=-from_pending,
                    hold_change=change,
                )
            except HoldChanged:
                continue
            if moved:
                return Movement(applied_now=True, pending=from_pending)
            return self._earlier_movement(seller_id, applied_marker, sign=-1)
        raise HoldChanged(f"the hold of {payment_order_id} kept changing; the refund is retried")

    def refund_restore_once(
        self,
        *,
        seller_id: str,
        currency: str,
        payment_order_id: str,
        amount: int,
        applied_marker: str,
        debit_marker: str,
    ) -> Movement:
        """Give a failed refund's seller part back: what its debit took from the hold goes back to the hold
        while it is still HELD (to `available` once it was released), the rest to `available`."""
        for _ in range(HOLD_RACE_ATTEMPTS):
            hold = self._credited_hold(seller_id, payment_order_id, applied_marker)
            if isinstance(hold, Movement):
                return hold
            to_pending = 0
            if hold.status != "NONE":
                debit = self._applied(seller_id, debit_marker)
                if debit is None:
                    already = self._applied(seller_id, applied_marker)
                    if already is not None:
                        return Movement(applied_now=False, pending=already.get("pending", 0))
                    # Its split is not known before the debit lands: retried until it does.
                    raise RestoreBeforeDebit(f"the restore {applied_marker} arrived before its debit")
                if hold.status == "HELD":
                    to_pending = -int(debit.get("pending", 0))
            change = None
            if to_pending:
                change = writes.give_to_hold(self.table_name, seller_id, payment_order_id, given=to_pending)
            marker = self._marker(
                seller_id, applied_marker, currency=currency, amount=amount, pending=to_pending, held=None
            )
            try:
                moved = self._apply(
                    seller_id=seller_id,
                    currency=currency,
                    marker=marker,
                    available=amount - to_pending,
                    pending=to_pending,
                    hold_change=change,
                )
            except HoldChanged:
                continue
            if moved:
                return Movement(applied_now=True, pending=to_pending)
            return self._earlier_movement(seller_id, applied_marker, sign=1)
        raise HoldChanged(f"the hold of {payment_order_id} kept changing; the restore is retried")

    def _credited_hold(self, seller_id: str, payment_order_id: str, applied_marker: str) -> Hold | Movement:
        """The order's hold, once the order is credited; or the movement `applied_marker` already made (a
        redelivery, whose credit landed in between or not); else CreditNotStored."""
        hold = self.hold(seller_id, payment_order_id)
        if hold is not None:
            return hold
        earlier = self._applied(seller_id, applied_marker)
        if earlier is not None:  # applied before this rule existed: report it as it was
            sign = 1 if int(earlier["amount"]) >= 0 else -1
            return Movement(applied_now=False, pending=sign * int(earlier.get("pending", 0)))
        raise CreditNotStored(f"order {payment_order_id} is not credited yet; {applied_marker} is retried")

    def _earlier_movement(self, seller_id: str, applied_marker: str, *, sign: int) -> Movement:
        earlier = self._applied(seller_id, applied_marker)
        if earlier is None:  # pragma: no cover - the transaction said it exists
            raise RuntimeError(f"marker {applied_marker} vanished")
        return Movement(applied_now=False, pending=sign * int(earlier.get("pending", 0)))

    def balances(self, seller_id: str) -> dict[str, Balance]:
        items = table(self.table_name).query(
            KeyConditionExpression=Key(keys.PARTITION_KEY).eq(seller_id)
            & Key(keys.SORT_KEY).begins_with(keys.BALANCE_PREFIX),
            ConsistentRead=True,
        )["Items"]
        return {keys.currency_of(item[keys.SORT_KEY]): Balance.model_validate(plain(item)) for item in items}

    def mark_due_balances(self) -> int:
        """Put every balance with money on the payout-due index: the one-off backfill for balances credited
        before the index existed (a Scan, run once by `payments backfill-balances`, never on a schedule)."""
        marked = 0
        found = items(
            self.table_name,
            "scan",
            FilterExpression=Attr(keys.SORT_KEY).begins_with(keys.BALANCE_PREFIX) & Attr("available").gt(0),
            ProjectionExpression=f"{keys.PARTITION_KEY}, {keys.SORT_KEY}",
        )
        for item in found:
            currency = keys.currency_of(str(item[keys.SORT_KEY]))
            table(self.table_name).update_item(
                Key={keys.PARTITION_KEY: item[keys.PARTITION_KEY], keys.SORT_KEY: item[keys.SORT_KEY]},
                UpdateExpression="SET #due = :currency",
                ExpressionAttributeNames={"#due": keys.PAYOUT_DUE_ATTRIBUTE},
                ExpressionAttributeValues={":currency": currency},
            )
            marked += 1
        return marked
