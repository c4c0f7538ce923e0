"""A seller's payout account: what the marketplace sends, what is stored (numbers sealed), what is shown.

The checksums are checked here, so a mistyped IBAN or routing number is a 400 naming the field before
anything is stored; the messages never echo the value."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from stdnum import iban as iban_number
from stdnum.exceptions import ValidationError as NumberInvalid
from stdnum.us import rtn

from functions.common.money import Currency

AccountStatus = Literal["VERIFIED"]
# Countries whose banks take payouts to a domestic account number and routing number instead of an IBAN.
ROUTING_NUMBER_COUNTRIES = frozenset({"US"})
# The first two digits of a routing number: a Federal Reserve district (00-12), a thrift (21-32), an
# electronic one (61-72) or a traveller's cheque issuer (80). Anything else is no bank's.
ABA_PREFIXES = frozenset({*range(0, 13), *range(21, 33), *range(61, 73), 80})
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, upper case.")]


class PayoutAccountRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "country": "DE",
                    "currency": "EUR",
                    "account_holder": "Seller A GmbH",
                    "iban": "DE89370400440532013000",
                },
                {
                    "country": "US",
                    "currency": "USD",
                    "account_holder": "Seller B LLC",
                    "account_number": "000123456789",
                    "routing_number": "110000000",
                },
            ]
        },
    )

    country: CountryCode
    currency: Currency
    account_holder: str = Field(min_length=1, max_length=140, pattern=r"^[^\x00-\x1f\x7f]+$")
    # repr=False: the numbers never show in a log line, a traceback or an error.
    iban: str | None = Field(
        default=None,
        max_length=42,
        pattern=r"^[A-Za-z0-9 ]+$",
        repr=False,
        description="For IBAN countries; spaces allowed. Its country must be `country`.",
    )
    account_number: str | None = Field(
        default=None, pattern=r"^[0-9]{4,17}$", repr=False, description="US only, with `routing_number`."
    )
    routing_number: str | None = Field(
        default=None,
        pattern=r"^[0-9]{9}$",
        repr=False,
        description="The ABA routing number (check digit and Federal Reserve prefix checked); US only.",
    )

    @field_validator("currency")
    @classmethod
    def _payable_currency(cls, value: str, info: ValidationInfo) -> str:
        # ACH pays US accounts in dollars only; an IBAN account may be held in another currency than its
        # country's (banks keep foreign-currency accounts under IBANs), so those take any supported currency.
        if info.data.get("country") in ROUTING_NUMBER_COUNTRIES and value != "USD":
            raise ValueError("US accounts are paid in USD")
        return value

    @field_validator("iban")
    @classmethod
    def _iban_checksum(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            compact = str(iban_number.validate(value))
        except NumberInvalid:
            raise ValueError("not a valid IBAN (format or check digits)") from None
        country = info.data.get("country")
        if country is not None and compact[:2] != country:
            raise ValueError("the IBAN's country is not the account's country")
        return compact

    @field_validator("routing_number")
    @classmethod
    def _routing_checksum(cls, value: str | None) -> str | None:
        if value is not None and not (rtn.is_valid(value) and int(value[:2]) in ABA_PREFIXES):
            raise ValueError("not a valid ABA routing number (check digit or Federal Reserve prefix)")
        return value


class BankAccountNumbers(BaseModel):
    """The sealed part of an account: only the payout executor opens it, to pay the seller."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    iban: str | None = None
    account_number: str | None = None
    routing_number: str | None = None

    def last4(self) -> str:
        return (self.iban or self.account_number or "")[-4:]

    def sealed_text(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), sort_keys=True)

    def __repr__(self) -> str:  # never the numbers, in a log line or a traceback
        return f"BankAccountNumbers(last4={self.last4()!r})"

    __str__ = __repr__


class PayoutAccount(BaseModel):
    """One version of a seller's payout account, as stored. Versions are immutable: a payout names the
    version it pays to, so a later change of account never redirects it."""

    seller_id: str
    version: int = Field(ge=1)
    changed_by: str | None = None  # the API key id that stored this version (who changed where money goes)
    country: str
    currency: str
    account_holder: str
    last4: str
    status: AccountStatus = "VERIFIED"
    sealed_numbers: bytes = Field(repr=False)
    created_at: str


class PayoutAccountView(BaseModel):
    version: int = Field(description="Each PUT makes a new version; a payout names the version it pays to.")
    country: str
    currency: str
    account_holder: str
    last4: str = Field(description="The last four characters of the IBAN or account number; never more.")
    status: AccountStatus

    @classmethod
    def of(cls, account: PayoutAccount) -> PayoutAccountView:
        return cls.model_validate(account.model_dump(include=set(cls.model_fields)))


class SellerResponse(BaseModel):
    seller_id: str
    payout_account: PayoutAccountView

    @classmethod
    def of(cls, account: PayoutAccount) -> SellerResponse:
        return cls(seller_id=account.seller_id, payout_account=PayoutAccountView.of(account))


class BankAccount(BaseModel):
    """Where a payout goes, as the payout executor sends it to the PSP (opened from one account version)."""

    model_config = ConfigDict(frozen=True)

    account_holder_name: str
    country: str
    currency: str
    numbers: BankAccountNumbers

    def as_psp_destination(self) -> dict[str, Any]:
        return {
            "object": "bank_account",
            "account_holder_name": self.account_holder_name,
            "country": self.country,
            "currency": self.currency,
            **self.numbers.model_dump(exclude_none=True),
        }
