"""What each settlement row type settles: which of our records, in which state, and how it is booked.

A row is matched against our record of its kind by merchant_reference (our payment order, refund,
payout or dispute id). A `dispute` row is the PSP taking the disputed amount and its fee when the
dispute opens (so any of our dispute states matches it); a `dispute_reversal` row gives the amount back
when the dispute is won. Each record is claimed once per row type: the claim key is the order id for
charges (as it always was) and `<type>#<reference>` for the others, so a dispute's opening row and its
reversal row are two claims.

Each type is settled by one sender's file: payouts by the payout provider's, every other type by the
PSP's. A row in the other sender's file is not matched (classify.py makes it a `malformed_row`), and a
file is only checked for the records of its own sender's types (missing.py)."""

from __future__ import annotations

from dataclasses import dataclass

from functions.reconciliation.models import FileSender
from functions.reconciliation.settlement_file import INCOMING_TYPES


@dataclass(frozen=True)
class RowKind:
    type: str
    record: str  # what we call our record of it, in break details
    settled_status: str  # the PSP's status of a row that moved money
    our_statuses: frozenset[str]  # our record's statuses the row settles
    fee_passed_on: bool = False  # the fee is the seller's (booked with the amount), not our expense
    compares_fee: bool = False  # our record knows the fee: a different one is an amount mismatch
    sender: FileSender = "psp"  # whose settlement file carries rows of this type

    @property
    def incoming(self) -> bool:
        return self.type in INCOMING_TYPES


ROW_KINDS: dict[str, RowKind] = {
    "charge": RowKind("charge", "order", "succeeded", frozenset({"SUCCEEDED"})),
    "refund": RowKind("refund", "refund", "succeeded", frozenset({"SUCCEEDED"})),
    "payout": RowKind("payout", "payout", "paid", frozenset({"PAID"}), sender="payout_provider"),
    "dispute": RowKind(
        "dispute", "dispute", "succeeded", frozenset({"OPEN", "WON", "LOST"}), fee_passed_on=True, compares_fee=True
    ),
    "dispute_reversal": RowKind("dispute_reversal", "dispute", "succeeded", frozenset({"WON"})),
}
RECORD_TYPES = tuple(t for t in ROW_KINDS if t != "charge")  # the types the RecordSource ports look up


def _types_of(sender: FileSender) -> frozenset[str]:
    return frozenset(t for t, kind in ROW_KINDS.items() if kind.sender == sender)


SENDER_TYPES: dict[FileSender, frozenset[str]] = {
    "psp": _types_of("psp"),
    "payout_provider": _types_of("payout_provider"),
}
SENDER_NAMES: dict[FileSender, str] = {"psp": "the PSP", "payout_provider": "the payout provider"}
SEPARATOR = "#"  # never in an id ([A-Za-z0-9_-])


def claim_key(kind: str, reference: str) -> str:
    return reference if kind == "charge" else f"{kind}{SEPARATOR}{reference}"


def foreign_row_detail(kind: str, sender: FileSender) -> str:
    """Why a row of `kind` in `sender`'s file is not matched (a malformed_row break's detail)."""
    theirs = SENDER_NAMES[ROW_KINDS[kind].sender]
    return f"{kind} row in {SENDER_NAMES[sender]}'s settlement file: {kind} rows belong in {theirs}'s file"


def split_claim_key(key: str) -> tuple[str, str]:
    """(row type, merchant reference) of a claim key."""
    kind, separator, reference = key.partition(SEPARATOR)
    return (kind, reference) if separator else ("charge", key)


def booking(kind: RowKind, amount: int, fee: int) -> tuple[int, int]:
    """What a matched row books: money in, (gross, fee expense); money out, (receivable cleared, fee
    expense) - a fee passed on to the seller was booked into the receivable with the amount."""
    if kind.fee_passed_on:
        return amount + fee, 0
    return amount, fee
