"""Sellers: DynamoDB cancels one of two transactions that touch the same item
at once with TransactionConflict (moto serializes them, so it never does); a PUT must not answer 5xx."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.common.dynamo import table
from functions.sellers.settings import SellersApiSettings
from local_stack.deploy import LocalCloud
from tests.integration.conftest import api_event, context
from tests.support.bank_accounts import us_account_body

API = "functions.sellers.handler.api_handler"


def test_a_transaction_conflict_between_concurrent_puts_is_not_a_5xx(
    cloud: LocalCloud, use_function_env: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_function_env(API)
    sellers: Any = importlib.import_module("functions.sellers.handler")
    sellers._ports.cache_clear()
    client = table(SellersApiSettings.from_env().sellers_table).meta.client
    real = client.transact_write_items
    conflicts = [1]

    def conflicting(**kwargs: Any) -> Any:
        if conflicts:
            conflicts.pop()
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                    "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
                },
                "TransactWriteItems",
            )
        return real(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", conflicting)
    path = "/v1/sellers/s/payout-account"
    event = api_event("PUT", path, us_account_body("s"), path_parameters={"seller_id": "s"})
    event["resource"] = event["requestContext"]["resourcePath"] = "/v1/sellers/{seller_id}/payout-account"
    response = sellers.api_handler(event, context())
    # the conflict is a lost race: read again and store the account, as version 1 (nothing was written)
    assert (response["statusCode"], json.loads(response["body"])["payout_account"]["version"]) == (200, 1)
    assert conflicts == []
