"""bench/cold_start.py without timing anything: which handlers it finds in a template and how it names their
kind, the order of a round, and the shape of its JSON report. (The timings themselves are not tested:
a shared machine is too noisy to assert on.)"""

from __future__ import annotations

import json
from typing import Any

from bench.cold_start import FLOOR, LambdaHandler, discover, report, round_order, table


def _function(handler: str) -> dict[str, Any]:
    return {"Type": "AWS::Lambda::Function", "Properties": {"Handler": handler, "Runtime": "python3.14"}}


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "WalletApiFn": _function("functions.wallet.api.api_handler"),
        "WalletFn": _function("functions.wallet.handler.handler"),
        "LedgerFn": _function("functions.ledger.handler.postings_handler"),
        "CdkNotifications": _function("index.handler"),
        "WalletQueue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "WalletGet": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "HttpMethod": "GET",
                "Integration": {
                    "Uri": {
                        "Fn::Join": [
                            "",
                            ["arn:aws:apigateway:lambda/functions/", {"Fn::GetAtt": ["WalletApiFn", "Arn"]}, "/inv"],
                        ]
                    }
                },
            },
        },
    }
}


def test_discovers_our_functions_and_names_api_ones_by_their_gateway_integration() -> None:
    assert discover(TEMPLATE) == [
        LambdaHandler(function="WalletApiFn", handler="functions.wallet.api.api_handler", kind="api"),
        LambdaHandler(function="LedgerFn", handler="functions.ledger.handler.postings_handler", kind="worker"),
        LambdaHandler(function="WalletFn", handler="functions.wallet.handler.handler", kind="worker"),
    ]
    assert [h.module for h in discover(TEMPLATE)] == [
        "functions.wallet.api",
        "functions.ledger.handler",
        "functions.wallet.handler",
    ]


def test_a_round_runs_the_floor_between_every_four_modules() -> None:
    modules = [f"m{i}" for i in range(1, 10)]
    assert round_order(modules) == [
        FLOOR, "m1", "m2", "m3", "m4", FLOOR, "m5", "m6", "m7", "m8", FLOOR, "m9",
    ]  # fmt: skip
    assert round_order(["m1", "m2", "m3", "m4"]) == [FLOOR, "m1", "m2", "m3", "m4"]


def test_report_gives_the_floor_and_each_handlers_seconds_and_ratio() -> None:
    handlers = discover(TEMPLATE)
    best = {FLOOR: 0.5, "functions.wallet.api": 0.75, "functions.ledger.handler": 0.6, "functions.wallet.handler": 0.65}
    result = report(handlers, best, rounds=5, bytecode="deployed")
    assert json.loads(json.dumps(result)) == {
        "rounds": 5,
        "bytecode": "deployed",
        "floor_seconds": 0.5,
        "handlers": [
            {
                "handler": "functions.wallet.api.api_handler",
                "function": "WalletApiFn",
                "kind": "api",
                "seconds": 0.75,
                "ratio": 1.5,
                "target": 1.6,
            },
            {
                "handler": "functions.ledger.handler.postings_handler",
                "function": "LedgerFn",
                "kind": "worker",
                "seconds": 0.6,
                "ratio": 1.2,
                "target": 1.3,
            },
            {
                "handler": "functions.wallet.handler.handler",
                "function": "WalletFn",
                "kind": "worker",
                "seconds": 0.65,
                "ratio": 1.3,
                "target": 1.3,
            },
        ],
    }
    assert table(result).splitlines()[4] == (
        "| functions.wallet.api.api_handler          | api    |  0.750 |    1.50 |    1.6 |"
    )
