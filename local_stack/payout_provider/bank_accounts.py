"""Bank account numbers as a bank checks them, shared by the PSP's payouts and the payout provider's
payees: an IBAN (its checksum, and its country the account's) or a US account number (digits) with an ABA
routing number (its checksum), never both. Callers keep only the last four characters of what this returns."""

from __future__ import annotations

from typing import Any

from stdnum import iban as iban_number
from stdnum.exceptions import ValidationError
from stdnum.us import rtn


class InvalidBankAccount(ValueError):
    """A bank account a bank would refuse; `param` names the field at fault."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def bank_account_number(country: str, *, iban: Any, account_number: Any, routing_number: Any) -> str:
    """The account's IBAN (compact, upper case) or US account number; InvalidBankAccount if a bank would
    refuse it."""
    if iban is not None:
        if account_number is not None or routing_number is not None:
            raise InvalidBankAccount("iban", "Give an iban, or an account_number and a routing_number, not both.")
        if not isinstance(iban, str):
            raise InvalidBankAccount("iban", "iban must be a string.")
        try:
            compact: str = iban_number.validate(iban)
        except ValidationError as error:
            raise InvalidBankAccount("iban", f"iban is not a valid IBAN: {error}") from error
        if compact[:2] != country:
            raise InvalidBankAccount("iban", "The IBAN's country is not the bank account's country.")
        return compact
    if account_number is None:
        raise InvalidBankAccount("iban", "Give an iban, or an account_number and a routing_number.")
    if not isinstance(account_number, str) or not account_number.isdigit() or not account_number.isascii():
        raise InvalidBankAccount("account_number", "account_number must be digits.")
    if not isinstance(routing_number, str) or not rtn.is_valid(routing_number):
        raise InvalidBankAccount("routing_number", "routing_number must be a valid ABA routing number.")
    if country != "US":
        raise InvalidBankAccount("country", "An account with a routing number is a US account.")
    return account_number
