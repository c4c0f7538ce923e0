"""The sellers API and its adapters through moto: accounts stored as versions with their numbers sealed by
KMS (never in the item, the response or the logs), opened only for the version a payout names."""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.common.dynamo import table
from functions.common.kms_sealer import KmsSecretSealer
from functions.sellers.settings import SellersApiSettings
from functions.sellers.store import CURRENT_ACCOUNT, DynamoSellerStore, SealedPayoutDestinations, version_key
from local_stack.deploy import LocalCloud
from local_stack.moto_server import serialize_dynamodb
from tests.integration.conftest import api_event, context
from tests.support.bank_accounts import IBAN, ROUTING_NUMBER, US_ACCOUNT, iban_account_body, us_account_body

API = "functions.sellers.handler.api_handler"
EXECUTOR = "functions.payout_executor.handler.handler"


@pytest.fixture
def sellers(cloud: LocalCloud, use_function_env: Callable[[str], None]) -> Any:
    use_function_env(API)
    module = importlib.import_module("functions.sellers.handler")
    module._ports.cache_clear()
    return module


def put_account(sellers: Any, seller_id: str, body: Any) -> tuple[int, dict[str, Any]]:
    path = f"/v1/sellers/{seller_id}/payout-account"
    event = api_event("PUT", path, body, path_parameters={"seller_id": seller_id})
    event["resource"] = event["requestContext"]["resourcePath"] = "/v1/sellers/{seller_id}/payout-account"
    response = sellers.api_handler(event, context())
    return response["statusCode"], json.loads(response["body"])


def read_seller(sellers: Any, seller_id: str) -> tuple[int, dict[str, Any]]:
    event = api_event("GET", f"/v1/sellers/{seller_id}", path_parameters={"seller_id": seller_id})
    event["resource"] = event["requestContext"]["resourcePath"] = "/v1/sellers/{seller_id}"
    response = sellers.api_handler(event, context())
    return response["statusCode"], json.loads(response["body"])


def test_an_account_is_stored_sealed_and_read_back_by_its_last_four(
    sellers: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status, body = put_account(sellers, "seller_a", us_account_body("seller_a"))
    assert (status, body) == (
        200,
        {
            "seller_id": "seller_a",
            "payout_account": {
                "version": 1,
                "country": "US",
                "currency": "USD",
                "account_holder": "seller_a LLC",
                "last4": "6789",
                "status": "VERIFIED",
            },
        },
    )
    assert read_seller(sellers, "seller_a") == (200, body)
    settings = SellersApiSettings.from_env()
    items = table(settings.sellers_table).scan()["Items"]
    assert sorted(item["sk"] for item in items) == [CURRENT_ACCOUNT, version_key(1)]
    for item in items:  # the numbers are nowhere in the stored items, the logs or the response
        assert US_ACCOUNT not in repr(item) and ROUTING_NUMBER not in repr(item)
    assert US_ACCOUNT not in capsys.readouterr().out


def test_the_payout_executor_opens_the_version_a_payout_names_and_a_moved_ciphertext_does_not_open(
    sellers: Any, use_function_env: Callable[[str], None]
) -> None:
    assert put_account(sellers, "seller_a", us_account_body("seller_a"))[0] == 200
    assert put_account(sellers, "seller_a", iban_account_body("seller_a", currency="USD"))[0] == 200
    settings = SellersApiSettings.from_env()
    use_function_env(EXECUTOR)
    destinations = SealedPayoutDestinations(settings.sellers_table, settings.accounts_key_arn)
    first, second = destinations.open("seller_a", 1), destinations.open("seller_a", 2)
    assert (first.numbers.account_number, first.numbers.routing_number, first.numbers.iban) == (
        US_ACCOUNT,
        ROUTING_NUMBER,
        None,
    )
    assert (second.numbers.iban, second.country, second.account_holder_name) == (IBAN, "DE", "seller_a GmbH")
    # A ciphertext copied onto another seller's item is bound to its owner: it does not open there.
    store = DynamoSellerStore(settings.sellers_table)
    stolen = store.version("seller_a", 1)
    assert stolen is not None
    with pytest.raises(ClientError):
        KmsSecretSealer(settings.accounts_key_arn).open(stolen.sealed_numbers, seller_id="seller_b", version="1")


@pytest.mark.parametrize(
    ("change", "param"),
    [({"iban": "DE89370400440532013001"}, "iban"), ({"routing_number": "110000001"}, "routing_number")],
)
def test_a_bad_checksum_is_400_naming_the_field_and_stores_nothing(
    sellers: Any, change: dict[str, Any], param: str
) -> None:
    body = iban_account_body("s") if param == "iban" else us_account_body("s")
    status, answer = put_account(sellers, "s", {**body, **change})
    assert (status, answer["error"]["code"], answer["error"]["param"]) == (400, "parameter_invalid", param)
    assert "DE89370400440532013001" not in answer["error"]["message"]
    assert table(SellersApiSettings.from_env().sellers_table).scan()["Items"] == []
    assert read_seller(sellers, "s")[0] == 404


def test_a_luhn_valid_account_number_is_a_bank_number_here_but_a_card_anywhere_else_in_the_body(
    sellers: Any,
) -> None:
    luhn_valid = "4242424242424242"  # 16 digits: a plausible US account number
    status, body = put_account(sellers, "s", us_account_body("s", account_number=luhn_valid))
    assert (status, body["payout_account"]["last4"]) == (200, "4242")
    status, body = put_account(sellers, "s", {**us_account_body("s"), "account_holder": luhn_valid})
    assert (status, body["error"]["code"], body["error"]["param"]) == (400, "card_number_detected", "account_holder")


def test_concurrent_puts_each_take_their_own_version(sellers: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto alone puts back a snapshot of the tables when a transaction fails, erasing what a concurrent
    # transaction committed meanwhile (DynamoDB never does): run it as the local cloud does.
    serialize_dynamodb(monkeypatch.setattr)
    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda n=n: answers.append(put_account(sellers, "s", us_account_body(f"s{n}"))[0]))
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store = DynamoSellerStore(SellersApiSettings.from_env().sellers_table)
    stored = [store.version("s", v) for v in range(1, 6)]
    versions = [a.version for a in stored if a is not None]
    current = store.current("s")
    assert current is not None
    # every 200 is a version of its own; a PUT that lost every race answered 409 and stored nothing
    assert sorted(answers).count(200) == len(versions) and set(answers) <= {200, 409}
    assert versions == list(range(1, len(versions) + 1)) and current.version == len(versions)
