"""The payout saga's state machine and the services agree on the wallet's key layout
(functions.wallet.keys) and the ledger's account names (functions.ledger.accounts).

The saga's key and account expressions are read back from the synthesized definition and evaluated
for one payout, then compared with what the modules build. Its wallet updates are also run, as
written, against a table the wallet store writes and the payout service reads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from functions.common.aws import client, reset_clients
from functions.common.dynamo import reset_tables
from functions.ledger import accounts
from functions.payout.store import WalletBalances
from functions.wallet import keys
from functions.wallet.domain import Balance
from functions.wallet.store import DynamoWalletStore
from tests.conftest import Synthesized
from tests.infra.template_facts import by_base_name, joined_text

SAGA_INPUT = {"payout_id": "po_9", "seller_id": "seller_9", "currency": "EUR", "amount": 500}
SAGA_ARN = "arn:aws:states:us-east-1:123456789012:execution:PayoutSaga:po_9"
# The context object ($$) of one execution, as Step Functions gives it to the states.
SAGA_CONTEXT = {"Execution": {"Id": SAGA_ARN}, "State": {"EnteredTime": "2026-01-01T00:00:00.000Z"}}
_FORMAT = re.compile(r"States\.Format\('((?:[^'\\]|\\.)*)'((?:, *\$\$?[.\w]+)*)\)")
_PATH = re.compile(r"\$\$?(\.\w+)+")
# A wallet prefix as the layout writes them: capitals and a '#'.
_WALLET_PREFIX = re.compile(r"[A-Z][A-Z_]*#")


def _path(path: str, data: dict[str, Any]) -> Any:
    """A path into the state's input, or, with `$$.`, into the context object under data["$$"]."""
    if not _PATH.fullmatch(path):
        raise ValueError(f"not a simple path: {path}")
    value: Any = data["$$"] if path.startswith("$$.") else data
    for name in path.split(".")[1:]:
        value = value[name]
    return value


def _expression(expression: str, data: dict[str, Any]) -> Any:
    """A `.$` value of the saga: a path, or States.Format with `{}` per path argument."""
    matched = _FORMAT.fullmatch(expression)
    if matched is None:
        return _path(expression, data)
    template = re.sub(r"\\(.)", r"\1", matched.group(1))
    arguments = [_path(a.strip(), data) for a in matched.group(2).split(",")[1:]]
    pieces = template.split("{}")
    if len(pieces) != len(arguments) + 1:
        raise ValueError(f"{expression}: {len(pieces) - 1} placeholders for {len(arguments)} arguments")
    return pieces[0] + "".join(str(a) + piece for a, piece in zip(arguments, pieces[1:], strict=True))


def _evaluate(parameters: Any, data: dict[str, Any]) -> Any:
    """Parameters as Step Functions passes them on: each `name.$` replaced by `name` and its value."""
    if isinstance(parameters, list):
        return [_evaluate(p, data) for p in parameters]
    if not isinstance(parameters, dict):
        return parameters
    return {
        name.removesuffix(".$"): _expression(value, data) if name.endswith(".$") else _evaluate(value, data)
        for name, value in parameters.items()
    }


def _format_templates(value: Any) -> Iterator[str]:
    """The template of every States.Format in a definition."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _format_templates(v)
    elif isinstance(value, list):
        for v in value:
            yield from _format_templates(v)
    elif isinstance(value, str):
        for matched in _FORMAT.finditer(value):
            yield matched.group(1)


def _strings(value: Any) -> Iterator[str]:
    """Every name and text of a definition."""
    if isinstance(value, dict):
        for name, v in value.items():
            yield name
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


@pytest.fixture(scope="module")
def saga(synthesized: Synthesized) -> dict[str, Any]:
    _, machine = by_base_name(synthesized.template, "AWS::StepFunctions::StateMachine")["PayoutsPayoutSagaStateMachine"]
    definition: dict[str, Any] = json.loads(joined_text(machine["Properties"]["DefinitionString"]))
    return definition


def _logical_id(synthesized: Synthesized, resource_type: str, name: str) -> str:
    return by_base_name(synthesized.template, resource_type)[name][0]


def _wallet_states(synthesized: Synthesized, saga: dict[str, Any]) -> dict[str, dict[str, Any]]:
    table = "${" + _logical_id(synthesized, "AWS::DynamoDB::Table", "PayInWalletTable") + "}"
    return {
        name: state["Parameters"]
        for name, state in saga["States"].items()
        if state.get("Parameters", {}).get("TableName") == table
    }


def test_the_layout_and_the_account_names_are_the_stored_ones() -> None:
    # Items in deployed tables and accounts in the public ledger API carry these exact strings.
    assert (keys.PARTITION_KEY, keys.SORT_KEY) == ("seller_id", "sk")
    assert keys.balance_key("EUR") == "BALANCE#EUR"
    assert keys.currency_of("BALANCE#EUR") == "EUR"
    assert keys.applied_key("charge#po_1") == "APPLIED#charge#po_1"
    assert keys.HOLD_ATTRIBUTE_FORMAT.format("po_1") == "HOLD#po_1"
    assert keys.reserved_key("po_1") == "RESERVED#po_1"
    assert accounts.seller_payable("s_1") == "seller_payable:s_1"
    assert accounts.payout_in_transit("s_1") == "payout_in_transit:s_1"
    assert (accounts.PSP_RECEIVABLE, accounts.BANK_CASH, accounts.PSP_FEE_EXPENSE) == (
        "psp_receivable",
        "bank_cash",
        "psp_fee_expense",
    )


def test_the_wallet_tables_keys_are_the_layouts(synthesized: Synthesized) -> None:
    _, table = by_base_name(synthesized.template, "AWS::DynamoDB::Table")["PayInWalletTable"]
    assert table["Properties"]["KeySchema"] == [
        {"AttributeName": keys.PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": keys.SORT_KEY, "KeyType": "RANGE"},
    ]


def test_every_saga_wallet_update_addresses_the_balance_item_and_the_payouts_hold(
    synthesized: Synthesized, saga: dict[str, Any]
) -> None:
    updates = _wallet_states(synthesized, saga)
    assert set(updates) == {"ClaimReservation", "ReserveFunds", "ConfirmHold", "SettleHold", "ReleaseHold"}
    claim = _evaluate(updates.pop("ClaimReservation"), {**SAGA_INPUT, "$$": SAGA_CONTEXT})
    assert claim["Key"] == {keys.PARTITION_KEY: {"S": "seller_9"}, keys.SORT_KEY: {"S": keys.reserved_key("po_9")}}
    assert claim["ExpressionAttributeValues"] == {":execution": {"S": f"{SAGA_ARN} 2026-01-01T00:00:00.000Z"}}
    for name, parameters in updates.items():
        evaluated = _evaluate(parameters, SAGA_INPUT)
        assert evaluated["Key"] == {
            keys.PARTITION_KEY: {"S": "seller_9"},
            keys.SORT_KEY: {"S": keys.balance_key("EUR")},
        }, name
        # Releasing funds makes them available again: the seller enters the payout-due index
        due = {"#due": keys.PAYOUT_DUE_ATTRIBUTE} if name == "ReleaseHold" else {}
        hold = {"#hold": keys.HOLD_ATTRIBUTE_FORMAT.format("po_9")}
        assert evaluated["ExpressionAttributeNames"] == {**hold, **due}, name


def test_the_saga_writes_no_other_wallet_prefix_and_builds_its_keys_from_the_layouts_templates(
    saga: dict[str, Any],
) -> None:
    prefixes = {prefix for text in _strings(saga) for prefix in _WALLET_PREFIX.findall(text)}
    assert prefixes == {keys.BALANCE_PREFIX, keys.HOLD_PREFIX, keys.RESERVED_PREFIX}
    wallet_templates = {t for t in _format_templates(saga) if _WALLET_PREFIX.search(t)}
    assert wallet_templates == {keys.BALANCE_KEY_FORMAT, keys.HOLD_ATTRIBUTE_FORMAT, keys.RESERVED_KEY_FORMAT}


def test_the_saga_posts_to_the_ledgers_accounts(synthesized: Synthesized, saga: dict[str, Any]) -> None:
    postings_queue = "${" + _logical_id(synthesized, "AWS::SQS::Queue", "PayInLedgerPostingsQueue") + "}"
    postings = {
        name: _evaluate(state["Parameters"]["MessageBody"], SAGA_INPUT)
        for name, state in saga["States"].items()
        if state.get("Parameters", {}).get("QueueUrl") == postings_queue
    }
    lines = {name: [(line["account"], line["direction"]) for line in body["lines"]] for name, body in postings.items()}
    payable, in_transit = accounts.seller_payable("seller_9"), accounts.payout_in_transit("seller_9")
    assert lines == {
        "LedgerInTransit": [(payable, "debit"), (in_transit, "credit")],
        "LedgerCashOut": [(in_transit, "debit"), (accounts.PSP_RECEIVABLE, "credit")],
        "LedgerReversal": [(in_transit, "debit"), (payable, "credit")],
    }
    account_templates = {t for t in _format_templates(saga) if ":" in t}
    assert account_templates == {accounts.SELLER_PAYABLE_FORMAT, accounts.PAYOUT_IN_TRANSIT_FORMAT}


@pytest.fixture
def wallet_table(synthesized: Synthesized) -> Iterator[str]:
    _, table = by_base_name(synthesized.template, "AWS::DynamoDB::Table")["PayInWalletTable"]
    with mock_aws():
        reset_clients()
        reset_tables()
        boto3.client("dynamodb").create_table(
            TableName="wallet",
            KeySchema=table["Properties"]["KeySchema"],
            AttributeDefinitions=table["Properties"]["AttributeDefinitions"],
            GlobalSecondaryIndexes=table["Properties"]["GlobalSecondaryIndexes"],
            BillingMode="PAY_PER_REQUEST",
        )
        yield "wallet"
    reset_clients()
    reset_tables()


def test_the_sagas_wallet_updates_move_the_balance_the_wallet_store_credited(
    synthesized: Synthesized, saga: dict[str, Any], wallet_table: str
) -> None:
    updates = _wallet_states(synthesized, saga)

    def run(state: str) -> None:
        client("dynamodb").update_item(**{**_evaluate(updates[state], SAGA_INPUT), "TableName": wallet_table})

    # Given a seller the wallet credited 700 EUR
    wallet, payouts = DynamoWalletStore(wallet_table), WalletBalances(wallet_table)
    assert wallet.credit_once(seller_id="seller_9", currency="EUR", amount=700, applied_marker="charge#po_1")

    # When the saga reserves 500 for a payout, the wallet and the payout service see the reservation
    run("ReserveFunds")
    assert wallet.balances("seller_9") == {"EUR": Balance(available=200, reserved=500)}
    assert payouts.available("seller_9", "EUR") == 200
    stored = client("dynamodb").get_item(
        TableName=wallet_table,
        Key={keys.PARTITION_KEY: {"S": "seller_9"}, keys.SORT_KEY: {"S": keys.balance_key("EUR")}},
    )["Item"]
    assert stored[keys.HOLD_ATTRIBUTE_FORMAT.format("po_9")] == {"N": "500"}

    # And when it settles the payout, the hold is gone and the reserved funds with it
    run("SettleHold")
    assert wallet.balances("seller_9") == {"EUR": Balance(available=200, reserved=0)}
    assert list(payouts.balances_at_least(lambda currency: 1)) == [("seller_9", "EUR", 200)]
    stored = client("dynamodb").get_item(
        TableName=wallet_table,
        Key={keys.PARTITION_KEY: {"S": "seller_9"}, keys.SORT_KEY: {"S": keys.balance_key("EUR")}},
    )["Item"]
    assert keys.HOLD_ATTRIBUTE_FORMAT.format("po_9") not in stored


def test_the_reservation_marker_admits_one_execution_for_ever(
    synthesized: Synthesized, saga: dict[str, Any], wallet_table: str
) -> None:
    updates = _wallet_states(synthesized, saga)

    def run(state: str, entered: str = "2026-01-01T00:00:00.000Z") -> None:
        # A state of the saga's execution (its ARN ends in the payout id), entered at `entered`
        data = {**SAGA_INPUT, "$$": {"Execution": {"Id": SAGA_ARN}, "State": {"EnteredTime": entered}}}
        client("dynamodb").update_item(**{**_evaluate(updates[state], data), "TableName": wallet_table})

    # Given a seller the wallet credited 1200 EUR, and a payout of 500 whose execution claimed (retried once
    # within the state), reserved and settled
    wallet = DynamoWalletStore(wallet_table)
    assert wallet.credit_once(seller_id="seller_9", currency="EUR", amount=1200, applied_marker="charge#po_1")
    run("ClaimReservation")
    run("ClaimReservation")
    run("ReserveFunds")
    run("SettleHold")
    assert wallet.balances("seller_9") == {"EUR": Balance(available=700, reserved=0)}

    # When the payout's saga runs again - the same name reused after 90 days: the same ARN, a later claim
    # Then its claim is refused: the marker outlived the hold, and names the first execution's claim
    with pytest.raises(ClientError) as refused:
        run("ClaimReservation", entered="2026-04-02T00:00:00.000Z")
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    marker = client("dynamodb").get_item(
        TableName=wallet_table,
        Key={keys.PARTITION_KEY: {"S": "seller_9"}, keys.SORT_KEY: {"S": keys.reserved_key("po_9")}},
    )["Item"]
    assert marker["reserved_by"] == {"S": f"{SAGA_ARN} 2026-01-01T00:00:00.000Z"}
    # And the marker is not a balance: the wallet and the payout service see the 700 alone
    assert wallet.balances("seller_9") == {"EUR": Balance(available=700, reserved=0)}
    assert list(WalletBalances(wallet_table).balances_at_least(lambda currency: 1)) == [("seller_9", "EUR", 700)]
