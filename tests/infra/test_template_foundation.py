"""The synthesized template is what runs locally, every handler in it is real, and its checks are on."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.common.settings import FunctionSettings
from infra.constructs.function import ServiceFunction
from local_stack.deploy import Deployer, LocalCloud
from local_stack.template import Resolver
from tests.conftest import Synthesized

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def deployed(synthesized: Synthesized) -> Iterator[tuple[LocalCloud, Resolver]]:
    with mock_aws():
        deployer = Deployer(synthesized.template, "Payments", boto3.client)
        yield deployer.deploy(), deployer.resolver


def _resolve(resolver: Resolver, value: Any) -> Any:
    return resolver.resolve(value)


def test_local_tables_have_the_templates_key_schemas_and_indexes(
    synthesized: Synthesized, deployed: tuple[LocalCloud, Resolver]
) -> None:
    cloud, _ = deployed
    tables = synthesized.resources("AWS::DynamoDB::Table")
    assert len(tables) >= 5
    for logical_id, resource in tables.items():
        props = resource["Properties"]
        described = boto3.client("dynamodb").describe_table(TableName=cloud.physical[logical_id].ref)["Table"]
        assert described["KeySchema"] == props["KeySchema"], logical_id
        assert sorted(described["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
            props["AttributeDefinitions"], key=lambda a: a["AttributeName"]
        )
        expected_indexes = {i["IndexName"]: i["KeySchema"] for i in props.get("GlobalSecondaryIndexes", [])}
        actual_indexes = {i["IndexName"]: i["KeySchema"] for i in described.get("GlobalSecondaryIndexes", [])}
        assert actual_indexes == expected_indexes, logical_id
        stream = props.get("StreamSpecification")
        assert described.get("StreamSpecification", {}).get("StreamViewType") == (
            stream["StreamViewType"] if stream else None
        )


def test_local_queues_have_the_templates_redrive_policies_and_timeouts(
    synthesized: Synthesized, deployed: tuple[LocalCloud, Resolver]
) -> None:
    cloud, resolver = deployed
    queues = synthesized.resources("AWS::SQS::Queue")
    with_dlq = 0
    for logical_id, resource in queues.items():
        props = resource["Properties"]
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=cloud.physical[logical_id].ref, AttributeNames=["All"]
        )["Attributes"]
        assert int(attributes["VisibilityTimeout"]) == props.get("VisibilityTimeout", 30)
        if "RedrivePolicy" in props:
            with_dlq += 1
            expected = resolver.resolve(props["RedrivePolicy"])
            actual = json.loads(attributes["RedrivePolicy"])
            assert actual["deadLetterTargetArn"] == expected["deadLetterTargetArn"]
            assert int(actual["maxReceiveCount"]) == expected["maxReceiveCount"]
    # every work queue has its DLQ: half of all queues are DLQs
    assert with_dlq * 2 == len(queues)


def test_local_bucket_notifications_are_the_templates(
    synthesized: Synthesized, deployed: tuple[LocalCloud, Resolver]
) -> None:
    _, resolver = deployed
    notifications = synthesized.resources("Custom::S3BucketNotifications")
    assert len(notifications) == 1
    for resource in notifications.values():
        props = resolver.resolve(resource["Properties"])
        actual = boto3.client("s3").get_bucket_notification_configuration(Bucket=props["BucketName"])
        expected = props["NotificationConfiguration"]["QueueConfigurations"]
        assert [
            (q["QueueArn"], q["Events"], q["Filter"]["Key"]["FilterRules"]) for q in actual["QueueConfigurations"]
        ] == [(q["QueueArn"], q["Events"], q["Filter"]["Key"]["FilterRules"]) for q in expected]
        assert expected[0]["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "settlements/"}]


def test_local_event_source_wiring_is_the_templates(
    synthesized: Synthesized, deployed: tuple[LocalCloud, Resolver]
) -> None:
    cloud, resolver = deployed
    mappings = synthesized.resources("AWS::Lambda::EventSourceMapping")
    expected = set()
    for resource in mappings.values():
        props = resolver.resolve(resource["Properties"])
        function = next(f for f in cloud.functions.values() if f.name == props["FunctionName"])
        expected.add((function.logical_id, props["EventSourceArn"], props.get("BatchSize")))
        assert "ReportBatchItemFailures" in props["FunctionResponseTypes"]
    actual = {(m.function, m.source_arn, m.batch_size) for m in cloud.event_sources}
    assert actual == expected
    assert len(actual) == len(mappings)


def test_local_state_machines_run_the_templates_definitions(
    synthesized: Synthesized, deployed: tuple[LocalCloud, Resolver]
) -> None:
    cloud, resolver = deployed
    machines = synthesized.resources("AWS::StepFunctions::StateMachine")
    assert machines
    for logical_id, resource in machines.items():
        expected = json.loads(resolver.resolve(resource["Properties"]["DefinitionString"]))
        described = boto3.client("stepfunctions").describe_state_machine(
            stateMachineArn=cloud.state_machines[logical_id]
        )
        assert json.loads(described["definition"]) == expected
        assert described["type"] == resource["Properties"].get("StateMachineType", "STANDARD")


def test_local_api_routes_are_the_templates_methods(
    synthesized: Synthesized, deployed: tuple[LocalCloud, Resolver]
) -> None:
    cloud, _ = deployed
    methods = [
        r["Properties"]
        for r in synthesized.resources("AWS::ApiGateway::Method").values()
        if r["Properties"]["HttpMethod"] != "OPTIONS"
    ]
    assert len(cloud.routes) == len(methods)
    assert {(r.method, r.path) for r in cloud.routes} >= {
        ("POST", "/v1/payments"),
        ("GET", "/v1/payments/{payment_id}"),
        ("GET", "/v1/wallets/{seller_id}"),
        ("GET", "/v1/ledger/entries"),
        ("GET", "/v1/ledger/trial-balance"),
    }


def _handlers(synthesized: Synthesized) -> list[tuple[str, str, dict[str, str]]]:
    return [
        (logical_id, r["Properties"]["Handler"], r["Properties"].get("Environment", {}).get("Variables", {}))
        for logical_id, r in synthesized.resources("AWS::Lambda::Function").items()
        if "ZipFile" not in r["Properties"].get("Code", {})
    ]


def _settings_models(synthesized: Synthesized) -> dict[str, type[FunctionSettings]]:
    """handler string -> settings model, as the CDK app's ServiceFunctions were defined."""
    models: dict[str, type[FunctionSettings]] = {}
    for function in (c for c in synthesized.app.node.find_all() if isinstance(c, ServiceFunction)):
        # Two functions running one handler must read one settings model.
        assert models.setdefault(function.handler, function.settings_model) is function.settings_model
    return models


def test_every_lambda_handler_resolves_to_a_callable_with_a_settings_model(synthesized: Synthesized) -> None:
    handlers = _handlers(synthesized)
    models = _settings_models(synthesized)
    assert len(handlers) >= 10
    assert {handler for _, handler, _ in handlers} == set(models)
    for logical_id, handler_path, environment in handlers:
        module_name, _, attribute = handler_path.rpartition(".")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, attribute)), f"{logical_id}: {handler_path}"
        settings_model = models[handler_path]
        assert set(environment) == settings_model.env_names(), logical_id


def test_every_function_is_arm64_on_python_3_12_or_newer_with_tracing(synthesized: Synthesized) -> None:
    for logical_id, resource in synthesized.resources("AWS::Lambda::Function").items():
        props = resource["Properties"]
        if "ZipFile" in props.get("Code", {}):
            continue  # CDK's own deploy-time helper
        assert props["Architectures"] == ["arm64"], logical_id
        major, minor = props["Runtime"].removeprefix("python").split(".")
        assert (int(major), int(minor)) >= (3, 12), logical_id
        assert props["TracingConfig"] == {"Mode": "Active"}, logical_id


def test_cfn_lint_finds_nothing_in_the_synthesized_template(synthesized: Synthesized) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--", str(synthesized.template_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_cdk_nag_findings_fail_synthesis(tmp_path: Path) -> None:
    # Given the real app plus one resource that breaks AwsSolutions rules (no DLQ, no TLS enforcement), in a
    # stack of its own: in the payments stack, a queue created after the stack's queue policy stops the
    # build before cdk-nag runs (tests/infra/test_queue_policy.py)
    from aws_cdk import Stack
    from aws_cdk import aws_sqs as sqs

    from infra.app import build_app

    app, _ = build_app(str(tmp_path))
    sqs.Queue(Stack(app, "Careless"), "CarelessQueue")
    # When it is synthesized, Then cdk-nag stops the build
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= rules
    # And nothing else is found: without an environment the acknowledgements hold in their token form too
    violating = {
        r["constructPath"] for p in report["pluginReports"] for v in p["violations"] for r in v["violatingConstructs"]
    }
    assert violating == {"Careless/CarelessQueue/Resource"}
