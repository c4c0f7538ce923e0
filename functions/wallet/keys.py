"""The wallet table's key layout, the one place it is written down.

Partition key `seller_id`; sort key `sk`, one of:
  BALANCE#<currency>   a balance: `available`, `reserved`, and one attribute HOLD#<payout_id> per
                       payout whose funds are reserved (written by the payout saga)
  APPLIED#<marker>     a credit that was applied, so a redelivered one is not (written by the wallet)
  RESERVED#<payout_id> the one saga execution that may reserve the payout's funds (`reserved_by`),
                       written before the reservation and never removed: it outlives the HOLD#, so no
                       later execution for the payout reserves again (written by the payout saga)

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


def reserved_key(payout_id: str) -> str:
    return RESERVED_KEY_FORMAT.format(payout_id)
