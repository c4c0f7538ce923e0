"""The wallet table's key layout, the one place it is written down.

Partition key `seller_id`; sort key `sk`, one of:
  BALANCE#<currency>   a balance: `available`, `reserved`, `pending` (held orders' shares waiting for
                       fulfilment), and one attribute HOLD#<payout_id> per payout whose funds are
                       reserved (written by the payout saga); and `payout_due` (the currency) while the
                       seller may be due a payout (see below)
  APPLIED#<marker>     a credit or debit that was applied, so a redelivered one is not (written by the
                       wallet). A refund's debit or restore keeps `pending`, its part in that bucket.
                       The charge marker of a held order (APPLIED#charge#<order>) is also the hold:
                       `hold_status` HELD -> RELEASED, `pending` (its share still held: less what
                       refunds took), `release_after` (when the hold period ends), and `hold_due` (the
                       day of release_after, while HELD), which keys the due-hold index (see below);
                       after the release, `released` (what it moved to available) and `released_by`
  RESERVED#<payout_id> the one saga execution that may reserve the payout's funds (`reserved_by`),
                       written before the reservation and never removed: it outlives the HOLD#, so no
                       later execution for the payout reserves again (written by the payout saga)

`payout_due` keys the sparse index PAYOUT_DUE_INDEX (partition `payout_due`, sort `seller_id`): the
scheduled payout run queries it per currency instead of scanning a table that holds a marker per order.
Every write that raises `available` sets it (a wallet credit, the saga's ReleaseHold); the scheduled run
removes it, conditionally on `available <= 0`, from the balances it finds empty, so the index holds the
sellers with money to pay out and a few just emptied, never one per order.

`hold_due` keys the sparse index HOLD_DUE_INDEX (partition `hold_due`, sort `release_after`): the hourly
hold sweep queries it per day instead of scanning; the release removes it, so it holds only held orders.

The wallet and payout services build keys with the functions below. The payout saga's state machine
(infra/constructs/payout_saga.py), the only writer of holds, builds its keys with States.Format from
the `*_FORMAT` templates: str.format and States.Format read `{}` alike, so one text serves both.
Standard library only: the CDK app imports this module too."""

from __future__ import annotations

PARTITION_KEY = "seller_id"
SORT_KEY = "sk"

BALANCE_PREFIX = "BALANCE#"
APPLIED_PREFIX = "APPLIED#"
HOLD_PREFIX = "HOLD#"
RESERVED_PREFIX = "RESERVED#"

PAYOUT_DUE_ATTRIBUTE = "payout_due"
PAYOUT_DUE_INDEX = "by_payout_due"

HOLD_DUE_ATTRIBUTE = "hold_due"
RELEASE_AFTER_ATTRIBUTE = "release_after"
HOLD_DUE_INDEX = "by_hold_due"

BALANCE_KEY_FORMAT = BALANCE_PREFIX + "{}"  # of the currency
APPLIED_KEY_FORMAT = APPLIED_PREFIX + "{}"  # of the marker
HOLD_ATTRIBUTE_FORMAT = HOLD_PREFIX + "{}"  # of the payout id
RESERVED_KEY_FORMAT = RESERVED_PREFIX + "{}"  # of the payout id


def balance_key(currency: str) -> str:
    return BALANCE_KEY_FORMAT.format(currency)


def currency_of(balance_sort_key: str) -> str:
    """The currency of a BALANCE# sort key."""
    return balance_sort_key.removeprefix(BALANCE_PREFIX)


def applied_key(marker: str) -> str:
    return APPLIED_KEY_FORMAT.format(marker)


def charge_marker(payment_order_id: str) -> str:
    """The applied marker of an order's credit (and, for a held order, its hold)."""
    return f"charge#{payment_order_id}"


def reserved_key(payout_id: str) -> str:
    return RESERVED_KEY_FORMAT.format(payout_id)
