"""Sellers (functions/sellers): the sellers table of payout accounts, the key their bank numbers are sealed
with, and the sellers API. Only this API may seal with the key, and only the payout executor may open."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct

from functions.sellers.settings import SellersApiSettings
from functions.sellers.store import PARTITION_KEY, SORT_KEY
from infra.constructs.encryption import field_key
from infra.constructs.function import ServiceFunction
from infra.constructs.table_access import grant_items
from infra.constructs.tables import money_table


class Sellers(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.accounts_key = field_key(
            self, "PayoutAccountsKey", holds="sellers' bank account numbers", alias_name="payout-accounts"
        )
        self.table = money_table(self, "SellersTable", partition_key=PARTITION_KEY, sort_key=SORT_KEY)
        self.api = ServiceFunction(
            self,
            "SellersApi",
            handler="functions.sellers.handler.api_handler",
            settings_model=SellersApiSettings,
            service_name="sellers",
            description="Sellers API: set and read a seller's payout account (numbers sealed with KMS).",
            sellers_table=self.table.table_name,
            accounts_key_arn=self.accounts_key.key_arn,
        )
        # A new version and the current account, in one transaction of two conditional puts.
        grant_items(self.table, self.api.function, "dynamodb:GetItem", "dynamodb:PutItem")
        self.accounts_key.grant(self.api.function, "kms:Encrypt")

    def grant_read_accounts(self, grantee: iam.IGrantable) -> None:
        """Read the accounts (the last four characters and versions; the numbers stay sealed)."""
        grant_items(self.table, grantee, "dynamodb:GetItem")

    def grant_open_accounts(self, grantee: iam.IGrantable) -> None:
        """Read an account version and open its numbers (the payout executor, to pay the seller)."""
        self.grant_read_accounts(grantee)
        self.accounts_key.grant(grantee, "kms:Decrypt")
