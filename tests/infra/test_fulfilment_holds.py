"""Fulfilment holds, on the template: the wallet table's due-hold index (keys only, and the sweep's Query
through it, in moto), the holds queue feeding the holds worker, the hourly sweep, the payments API's fulfil
route and settings, and the hold period from the stage's `fulfilmentHoldDays` (and, locally, from
PAYMENTS_FULFILMENT_HOLD_DAYS)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from moto import mock_aws
from pydantic import ValidationError

from functions.common.aws import client, reset_clients
from functions.common.dynamo import reset_tables
from functions.wallet import keys
from functions.wallet.holds import HeldShare
from functions.wallet.settings import HoldSweepSettings, WalletHoldsSettings
from functions.wallet.store import DynamoWalletStore
from infra.config import StageConfig
from infra.constructs.pay_in import PayIn
from local_stack.stack import FULFILMENT_HOLD_DAYS_ENV, LocalStackConfig, with_overrides
from tests.conftest import Synthesized
from tests.infra.template_facts import base_name, by_base_name, references

WALLET_CREDIT = "functions.wallet.handler.handler"
HOLDS_WORKER = "functions.wallet.holds_handler.handler"
HOLD_SWEEP = "functions.wallet.holds_handler.sweep_handler"


def _logical_id(synthesized: Synthesized, resource_type: str, name: str) -> str:
    return by_base_name(synthesized.template, resource_type)[name][0]


def _function(synthesized: Synthesized, handler: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, props),) = [
        (k, f["Properties"])
        for k, f in synthesized.resources("AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == handler
    ]
    return logical_id, props


def _wallet_table(synthesized: Synthesized) -> dict[str, Any]:
    props: dict[str, Any] = by_base_name(synthesized.template, "AWS::DynamoDB::Table")["PayInWalletTable"][1][
        "Properties"
    ]
    return props


def test_the_due_hold_index_is_sparse_keyed_by_day_and_release_time_and_projects_keys_only(
    synthesized: Synthesized,
) -> None:
    table = _wallet_table(synthesized)
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {keys.PAYOUT_DUE_INDEX, keys.HOLD_DUE_INDEX} == {"by_payout_due", "by_hold_due"}
    due = indexes[keys.HOLD_DUE_INDEX]
    assert due["KeySchema"] == [
        {"AttributeName": "hold_due", "KeyType": "HASH"},
        {"AttributeName": "release_after", "KeyType": "RANGE"},
    ]
    # The sweep reads only each hold's seller_id and sk from it
    assert due["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert {"AttributeName": "hold_due", "AttributeType": "S"} in table["AttributeDefinitions"]
    assert {"AttributeName": "release_after", "AttributeType": "S"} in table["AttributeDefinitions"]


@pytest.fixture
def wallet_table(synthesized: Synthesized) -> Iterator[str]:
    table = _wallet_table(synthesized)
    with mock_aws():
        reset_clients()
        reset_tables()
        boto3.client("dynamodb").create_table(
            TableName="wallet",
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
            BillingMode="PAY_PER_REQUEST",
        )
        yield "wallet"
    reset_clients()
    reset_tables()


def test_the_sweep_finds_due_holds_through_the_templates_index_until_they_are_released(wallet_table: str) -> None:
    # Given two held orders of a seller, due on 2026-03-08 at 10:00 and 14:00, and an order credited at once
    store = DynamoWalletStore(wallet_table)
    for order, release_after in (("po_a", "2026-03-08T10:00:00Z"), ("po_b", "2026-03-08T14:00:00Z")):
        assert store.credit_once(
            seller_id="seller_1",
            currency="EUR",
            amount=1000,
            applied_marker=keys.charge_marker(order),
            held=HeldShare(release_after=release_after, due_day="2026-03-08"),
        )
    assert store.credit_once(
        seller_id="seller_1", currency="EUR", amount=300, applied_marker=keys.charge_marker("po_c")
    )

    # Then a sweep at noon finds the first only, and one in the evening both
    assert list(store.due_holds("2026-03-08", until="2026-03-08T12:00:00Z")) == [("seller_1", "po_a")]
    assert list(store.due_holds("2026-03-08", until="2026-03-08T20:00:00Z")) == [
        ("seller_1", "po_a"),
        ("seller_1", "po_b"),
    ]
    # And the index holds the keys alone: the table's and its own
    (item, _) = client("dynamodb").query(
        TableName=wallet_table,
        IndexName=keys.HOLD_DUE_INDEX,
        KeyConditionExpression="hold_due = :day",
        ExpressionAttributeValues={":day": {"S": "2026-03-08"}},
    )["Items"]
    assert set(item) == {"seller_id", "sk", "hold_due", "release_after"}

    # When the first is released, it leaves the index
    released = store.release_once(seller_id="seller_1", payment_order_id="po_a", reason="expired")
    assert released is not None and (released.status, released.released) == ("RELEASED", 1000)
    assert list(store.due_holds("2026-03-08", until="2026-03-08T20:00:00Z")) == [("seller_1", "po_b")]


def test_the_holds_queue_feeds_the_holds_worker_which_books_on_the_wallet_and_the_ledger_postings_queue(
    synthesized: Synthesized,
) -> None:
    worker_id, worker = _function(synthesized, HOLDS_WORKER)
    assert base_name(worker_id) == "HoldsWalletHoldsFunction"
    holds_queue = _logical_id(synthesized, "AWS::SQS::Queue", "HoldsWalletHoldsQueue")
    (mapping,) = [
        m["Properties"]
        for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        if references(m["Properties"]["FunctionName"]) == [worker_id]
    ]
    assert references(mapping["EventSourceArn"]) == [holds_queue]
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 20}
    variables = worker["Environment"]["Variables"]
    assert set(variables) == WalletHoldsSettings.env_names()
    assert variables["WALLET_TABLE_NAME"] == {
        "Ref": _logical_id(synthesized, "AWS::DynamoDB::Table", "PayInWalletTable")
    }
    assert variables["LEDGER_POSTINGS_QUEUE_URL"] == {
        "Ref": _logical_id(synthesized, "AWS::SQS::Queue", "PayInLedgerPostingsQueue")
    }
    assert variables["POWERTOOLS_SERVICE_NAME"] == "wallet-holds"
    # Its queue: a release for an order not credited yet is retried by age, for a week, then it goes to the
    # queue's dead-letter queue, which the worker sends it to itself (tests/infra/test_wallet_waits.py)
    queue = synthesized.resources("AWS::SQS::Queue")[holds_queue]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 681
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": references(queue["RedrivePolicy"]["deadLetterTargetArn"])[0]}
    assert variables["MAX_MESSAGE_AGE_SECONDS"] == str(7 * 24 * 3600)
    assert queue["VisibilityTimeout"] == 180 >= 6 * worker["Timeout"]


def test_the_sweep_runs_hourly_one_at_a_time_and_dead_letters_a_failed_run(synthesized: Synthesized) -> None:
    sweep_id, sweep = _function(synthesized, HOLD_SWEEP)
    assert base_name(sweep_id) == "HoldsHoldSweepFunction"
    ((rule_id, rule),) = [
        (k, r["Properties"])
        for k, r in synthesized.resources("AWS::Events::Rule").items()
        if any(references(t["Arn"]) == [sweep_id] for t in r["Properties"].get("Targets", []))
    ]
    # The e2e tests fire it by this name (local_stack.scheduler matches a unique part of the logical id)
    assert "HoldSweepSchedule" in rule_id
    assert [k for k in synthesized.resources("AWS::Events::Rule") if "HoldSweepSchedule" in k] == [rule_id]
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2}
    assert "Input" not in target  # the scheduled event itself: its `time` is when the sweep was due
    assert sweep["ReservedConcurrentExecutions"] == 1
    assert sweep["Timeout"] == 300
    assert references(sweep["DeadLetterConfig"]["TargetArn"]) == [
        _logical_id(synthesized, "AWS::SQS::Queue", "PayoutsScheduleFailuresQueue")
    ]
    variables = sweep["Environment"]["Variables"]
    assert set(variables) == HoldSweepSettings.env_names()
    assert variables["WALLET_TABLE_NAME"] == {
        "Ref": _logical_id(synthesized, "AWS::DynamoDB::Table", "PayInWalletTable")
    }
    assert variables["WALLET_HOLDS_QUEUE_URL"] == {
        "Ref": _logical_id(synthesized, "AWS::SQS::Queue", "HoldsWalletHoldsQueue")
    }
    assert variables["HOLD_SWEEP_LOOKBACK_DAYS"] == "30"


def _api_path(synthesized: Synthesized, resource_ref: dict[str, Any]) -> str:
    if "Ref" not in resource_ref:
        return ""
    props = synthesized.resources("AWS::ApiGateway::Resource")[resource_ref["Ref"]]["Properties"]
    return f"{_api_path(synthesized, props['ParentId'])}/{props['PathPart']}"


def test_fulfil_is_a_keyed_route_of_the_payments_api_which_reads_orders_and_sends_releases(
    synthesized: Synthesized,
) -> None:
    payment_api = _logical_id(synthesized, "AWS::Lambda::Function", "PayInPaymentApiFunction")
    (method,) = [
        m["Properties"]
        for m in synthesized.resources("AWS::ApiGateway::Method").values()
        if _api_path(synthesized, m["Properties"]["ResourceId"]) == "/v1/payment-orders/{payment_order_id}/fulfil"
    ]
    assert method["HttpMethod"] == "POST"
    assert method["ApiKeyRequired"] is True
    assert method["Integration"]["Type"] == "AWS_PROXY"
    assert references(method["Integration"]["Uri"]) == [payment_api]
    variables = synthesized.resources("AWS::Lambda::Function")[payment_api]["Properties"]["Environment"]["Variables"]
    assert variables["EXECUTOR_TABLE_NAME"] == {
        "Ref": _logical_id(synthesized, "AWS::DynamoDB::Table", "PayInExecutorTable")
    }
    assert variables["WALLET_HOLDS_QUEUE_URL"] == {
        "Ref": _logical_id(synthesized, "AWS::SQS::Queue", "HoldsWalletHoldsQueue")
    }


def test_the_wallet_credits_with_the_stages_hold_period(synthesized: Synthesized) -> None:
    _, wallet = _function(synthesized, WALLET_CREDIT)
    variables = wallet["Environment"]["Variables"]
    assert variables[FULFILMENT_HOLD_DAYS_ENV] == str(StageConfig.for_stage("dev").fulfilment_hold_days) == "7"
    # Only the credit function reads it
    readers = {
        base_name(k)
        for k, f in synthesized.resources("AWS::Lambda::Function").items()
        if FULFILMENT_HOLD_DAYS_ENV in f["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert readers == {"PayInWalletFunction"}


def test_the_hold_period_comes_from_the_fulfilment_hold_days_context() -> None:
    # Given `-c fulfilmentHoldDays=3` (CLI context is text), and the pay-in path in a stack of its own
    app = App(context={"fulfilmentHoldDays": "3"})
    stack = Stack(app, "HoldPeriod")
    PayIn(
        stack,
        "PayIn",
        alarm_topic=sns.Topic(stack, "Alarms"),
        psp_base_url="https://psp.invalid",
        refunds_table=dynamodb.Table(
            stack, "Refunds", partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING)
        ),
        wallet_holds_queue=sqs.Queue(stack, "Holds"),
    )
    # Then the wallet's credit function waits 3 days
    functions = Template.from_stack(stack).find_resources("AWS::Lambda::Function")
    (wallet,) = [f for f in functions.values() if f["Properties"]["Handler"] == WALLET_CREDIT]
    assert wallet["Properties"]["Environment"]["Variables"][FULFILMENT_HOLD_DAYS_ENV] == "3"


def test_the_local_stack_overrides_the_hold_period_of_the_functions_that_read_it(
    synthesized: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the local stack started with PAYMENTS_FULFILMENT_HOLD_DAYS=0
    monkeypatch.setenv(FULFILMENT_HOLD_DAYS_ENV, "0")
    config = LocalStackConfig()
    assert config.fulfilment_hold_days == 0
    overrides = config.function_overrides("http://127.0.0.1:3001")
    # Then the wallet's credit function holds orders 0 days, and no other function gets the name
    changed = {}
    for logical_id, function in synthesized.resources("AWS::Lambda::Function").items():
        template_env = {
            k: str(v) for k, v in function["Properties"].get("Environment", {}).get("Variables", {}).items()
        }
        local_env = with_overrides(template_env, overrides)
        assert set(local_env) == set(template_env), logical_id
        if local_env.get(FULFILMENT_HOLD_DAYS_ENV) != template_env.get(FULFILMENT_HOLD_DAYS_ENV):
            changed[base_name(logical_id)] = (
                template_env[FULFILMENT_HOLD_DAYS_ENV],
                local_env[FULFILMENT_HOLD_DAYS_ENV],
            )
    assert changed == {"PayInWalletFunction": ("7", "0")}


def test_without_the_variable_the_local_stack_keeps_the_templates_hold_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FULFILMENT_HOLD_DAYS_ENV, raising=False)
    config = LocalStackConfig()
    assert config.fulfilment_hold_days is None
    assert FULFILMENT_HOLD_DAYS_ENV not in config.function_overrides("http://127.0.0.1:3001")


@pytest.mark.parametrize("value", ["-1", "366", "a week"])
def test_a_wrong_local_hold_period_fails_the_start(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(FULFILMENT_HOLD_DAYS_ENV, value)
    with pytest.raises(ValidationError):
        LocalStackConfig()
