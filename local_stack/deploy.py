"""Creates the template's resources in moto and describes the wiring the local runtime plays:
functions, event source mappings, API routes and gateway responses.

Why not moto's CloudFormation: CDK's Custom::S3BucketNotifications never completes there (its
handler is a Lambda that moto cannot run without Docker), and several resource types this stack
uses (WAF, API Gateway usage plans, dashboards) are not modelled. Building from the template's own
resource definitions keeps one source of truth and lets the gaps be handled explicitly here."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from local_stack.template import ACCOUNT_ID, REGION, PhysicalResource, Resolver, physical_name, resources_of


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    handler: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    reserved_concurrency: int | None


@dataclass(frozen=True)
class EventSourceMapping:
    function: str  # logical id
    source_arn: str
    kind: str  # "sqs" | "dynamodb"
    batch_size: int
    report_batch_item_failures: bool
    starting_position: str | None = None
    maximum_retry_attempts: int | None = None
    on_failure_arn: str | None = None
    filter_patterns: tuple[dict[str, Any], ...] = ()
    batching_window_seconds: int = 0  # MaximumBatchingWindowInSeconds: gather up to this long for a fuller batch


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway template, e.g. /v1/payments/{payment_id}
    function: str  # logical id
    api_key_required: bool


@dataclass(frozen=True)
class ScheduleRule:
    """An EventBridge schedule rule and the function it targets (played by local_stack.scheduler)."""

    logical_id: str
    name: str
    arn: str
    expression: str  # rate(...) or cron(...)
    function: str  # logical id
    input: str | None = None  # the target's constant Input, if any


@dataclass(frozen=True)
class GatewayResponse:
    status_code: int
    body: str


@dataclass
class LocalCloud:
    stack_name: str
    physical: dict[str, PhysicalResource]
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    event_sources: list[EventSourceMapping] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    gateway_responses: dict[str, GatewayResponse] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> arn
    schedules: list[ScheduleRule] = field(default_factory=list)

    def queue_url_by_arn(self, arn: str) -> str:
        for resource in self.physical.values():
            if resource.type == "AWS::SQS::Queue" and resource.attributes["Arn"] == arn:
                return resource.ref
        raise KeyError(arn)

    def names_of(self, resource_type: str) -> dict[str, str]:
        return {r.logical_id: r.ref for r in self.physical.values() if r.type == resource_type}


def _physical(stack: str, logical_id: str, resource_type: str) -> PhysicalResource:
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT_ID}:{{}}"
    if resource_type == "AWS::DynamoDB::Table":
        name = physical_name(stack, logical_id, max_length=255)
        return PhysicalResource(logical_id, resource_type, name, {"Arn": arn.format("dynamodb", f"table/{name}")})
    if resource_type == "AWS::SQS::Queue":
        name = physical_name(stack, logical_id, max_length=80)
        return PhysicalResource(logical_id, resource_type, "", {"Arn": arn.format("sqs", name), "QueueName": name})
    if resource_type == "AWS::S3::Bucket":
        name = re.sub(r"[^a-z0-9-]", "-", physical_name(stack, logical_id, max_length=63, lower=True))
        return PhysicalResource(
            logical_id,
            resource_type,
            name,
            {
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
            },
        )
    if resource_type == "AWS::Lambda::Function":
        name = physical_name(stack, logical_id, max_length=64)
        return PhysicalResource(logical_id, resource_type, name, {"Arn": arn.format("lambda", f"function:{name}")})
    if resource_type == "AWS::IAM::Role":
        name = physical_name(stack, logical_id, max_length=64)
        return PhysicalResource(
            logical_id, resource_type, name, {"Arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}", "RoleId": name}
        )
    if resource_type == "AWS::StepFunctions::StateMachine":
        name = physical_name(stack, logical_id, max_length=80)
        machine_arn = arn.format("states", f"stateMachine:{name}")
        return PhysicalResource(logical_id, resource_type, machine_arn, {"Arn": machine_arn, "Name": name})
    if resource_type == "AWS::Logs::LogGroup":
        name = f"/local/{stack}/{logical_id}"
        return PhysicalResource(logical_id, resource_type, name, {"Arn": arn.format("logs", f"log-group:{name}:*")})
    if resource_type == "AWS::SNS::Topic":
        name = physical_name(stack, logical_id, max_length=256)
        return PhysicalResource(logical_id, resource_type, arn.format("sns", name), {"TopicName": name})
    if resource_type == "AWS::ApiGateway::RestApi":
        return PhysicalResource(
            logical_id, resource_type, logical_id.lower()[:10], {"RootResourceId": f"{logical_id}-root"}
        )
    if resource_type == "AWS::ApiGateway::Stage":
        return PhysicalResource(logical_id, resource_type, logical_id, {})
    if resource_type == "AWS::WAFv2::WebACL":
        return PhysicalResource(
            logical_id,
            resource_type,
            logical_id,
            {"Arn": arn.format("wafv2", f"regional/webacl/{logical_id}"), "Id": logical_id},
        )
    return PhysicalResource(logical_id, resource_type, logical_id, {"Arn": arn.format("local", logical_id)})


def _queue_attributes(props: dict[str, Any]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for key, value in props.items():
        if key in ("QueueName", "Tags"):
            continue
        if isinstance(value, bool):
            attributes[key] = "true" if value else "false"
        elif isinstance(value, dict | list):
            attributes[key] = json.dumps(value)
        else:
            attributes[key] = str(value)
    return attributes


class Deployer:
    """Deploys a synthesized template into moto (reached through the given boto3 session)."""

    def __init__(self, template: dict[str, Any], stack_name: str, clients: Any) -> None:
        self.template = template
        self.stack_name = stack_name
        self.clients = clients
        self.physical = {
            logical_id: _physical(stack_name, logical_id, r["Type"]) for logical_id, r in template["Resources"].items()
        }
        self.resolver = Resolver(template, stack_name, self.physical)
        self.cloud = LocalCloud(stack_name=stack_name, physical=self.physical)

    def deploy(self) -> LocalCloud:
        self._tables()
        self._queues()
        self._buckets()
        self._bucket_notifications()
        self._secrets()
        self._keys()
        self._event_buses()
        self._functions()
        self._event_sources()
        self._api()
        self._state_machines()
        self._schedules()
        return self.cloud

    def _props(self, props: dict[str, Any]) -> dict[str, Any]:
        resolved: dict[str, Any] = self.resolver.resolve(props)
        return resolved

    def _tables(self) -> None:
        dynamodb = self.clients("dynamodb")
        for logical_id, raw in resources_of(self.template, "AWS::DynamoDB::Table"):
            props = self._props(raw)
            name = self.physical[logical_id].ref
            kwargs: dict[str, Any] = {
                "TableName": name,
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": props.get("BillingMode", "PROVISIONED"),
            }
            if kwargs["BillingMode"] == "PROVISIONED":
                kwargs["ProvisionedThroughput"] = props["ProvisionedThroughput"]
            if "GlobalSecondaryIndexes" in props:
                kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            if "StreamSpecification" in props:
                kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
            table = dynamodb.create_table(**kwargs)["TableDescription"]
            if "LatestStreamArn" in table:
                self.physical[logical_id].attributes["StreamArn"] = table["LatestStreamArn"]
            ttl = props.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                dynamodb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
                )

    def _queues(self) -> None:
        sqs = self.clients("sqs")
        queues = list(resources_of(self.template, "AWS::SQS::Queue"))
        # Dead-letter queues first: moto checks that a redrive target exists.
        queues.sort(key=lambda item: "RedrivePolicy" in item[1])
        for logical_id, raw in queues:
            resource = self.physical[logical_id]
            url = sqs.create_queue(
                QueueName=resource.attributes["QueueName"], Attributes=_queue_attributes(self._props(raw))
            )["QueueUrl"]
            resource.ref = url
            resource.attributes["QueueUrl"] = url

    def _buckets(self) -> None:
        s3 = self.clients("s3")
        for logical_id, raw in resources_of(self.template, "AWS::S3::Bucket"):
            props = self._props(raw)
            name = self.physical[logical_id].ref
            s3.create_bucket(Bucket=name)
            if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})

    def _bucket_notifications(self) -> None:
        # moto gap: Custom::S3BucketNotifications never completes in moto's CloudFormation, so the
        # configuration the custom resource would apply is applied here, from its own properties.
        s3 = self.clients("s3")
        for _, raw in resources_of(self.template, "Custom::S3BucketNotifications"):
            props = self._props(raw)
            configuration = {
                k: v
                for k, v in props["NotificationConfiguration"].items()
                if k in ("QueueConfigurations", "TopicConfigurations", "LambdaFunctionConfigurations")
            }
            s3.put_bucket_notification_configuration(
                Bucket=props["BucketName"], NotificationConfiguration=configuration
            )

    def _secrets(self) -> None:
        # Secrets Manager secrets exist locally so functions read them exactly as in AWS (Powertools
        # parameters). Generated values are generated here; KMS keys are not modelled (moto encrypts nothing).
        secretsmanager = self.clients("secretsmanager")
        for logical_id, raw in resources_of(self.template, "AWS::SecretsManager::Secret"):
            props = self._props(raw)
            value = props.get("SecretString") or secrets.token_urlsafe(36)
            created = secretsmanager.create_secret(
                Name=physical_name(self.stack_name, logical_id, max_length=512), SecretString=value
            )
            self.physical[logical_id].ref = created["ARN"]
            self.physical[logical_id].attributes["Id"] = created["ARN"]

    def _keys(self) -> None:
        # KMS keys exist locally so that functions that encrypt with a key themselves (webhook secrets) call
        # KMS as in AWS; tables, queues and secrets still encrypt nothing locally.
        kms = self.clients("kms")
        for logical_id, raw in resources_of(self.template, "AWS::KMS::Key"):
            props = self._props(raw)
            key = kms.create_key(Description=str(props.get("Description", logical_id)))["KeyMetadata"]
            self.physical[logical_id].ref = key["KeyId"]
            self.physical[logical_id].attributes["Arn"] = key["Arn"]

    def _event_buses(self) -> None:
        # Custom event buses and their pattern rules run in moto (it puts matching events on SQS targets);
        # schedule rules are the local scheduler's (_schedules).
        events = self.clients("events")
        for logical_id, raw in resources_of(self.template, "AWS::Events::EventBus"):
            name = str(self._props(raw)["Name"])
            arn = events.create_event_bus(Name=name)["EventBusArn"]
            self.physical[logical_id].ref = name
            self.physical[logical_id].attributes.update({"Arn": arn, "Name": name})
        for logical_id, raw in resources_of(self.template, "AWS::Events::Rule"):
            props = self._props(raw)
            if "EventPattern" not in props:
                continue
            name = physical_name(self.stack_name, logical_id, max_length=64)
            bus = str(props.get("EventBusName", "default"))
            arn = events.put_rule(
                Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]), State=props["State"]
            )["RuleArn"]
            self.physical[logical_id].ref = name
            self.physical[logical_id].attributes["Arn"] = arn
            targets = [{"Id": t["Id"], "Arn": t["Arn"]} for t in props.get("Targets", []) if ":sqs:" in str(t["Arn"])]
            if len(targets) != len(props.get("Targets", [])):
                raise NotImplementedError(f"{logical_id}: only SQS targets of pattern rules run locally")
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)

    def _functions(self) -> None:
        for logical_id, raw in resources_of(self.template, "AWS::Lambda::Function"):
            props = self._props(raw)
            if "Handler" not in props or "ZipFile" in props.get("Code", {}):
                continue  # CDK's own inline helpers (e.g. the notifications handler) are not ours to run
            self.cloud.functions[logical_id] = FunctionSpec(
                logical_id=logical_id,
                name=self.physical[logical_id].ref,
                handler=props["Handler"],
                environment={k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()},
                timeout_seconds=int(props.get("Timeout", 3)),
                memory_mb=int(props.get("MemorySize", 128)),
                reserved_concurrency=props.get("ReservedConcurrentExecutions"),
            )

    def _function_logical_id(self, name_or_arn: str) -> str:
        for logical_id, spec in self.cloud.functions.items():
            if name_or_arn in (spec.name, self.physical[logical_id].attributes["Arn"]):
                return logical_id
        raise KeyError(name_or_arn)

    def _event_sources(self) -> None:
        for _, raw in resources_of(self.template, "AWS::Lambda::EventSourceMapping"):
            props = self._props(raw)
            source_arn = props["EventSourceArn"]
            kind = "sqs" if source_arn.startswith("arn:aws:sqs:") else "dynamodb"
            self.cloud.event_sources.append(
                EventSourceMapping(
                    function=self._function_logical_id(props["FunctionName"]),
                    source_arn=source_arn,
                    kind=kind,
                    batch_size=int(props.get("BatchSize", 10 if kind == "sqs" else 100)),
                    report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                    starting_position=props.get("StartingPosition"),
                    maximum_retry_attempts=props.get("MaximumRetryAttempts"),
                    on_failure_arn=props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
                    filter_patterns=tuple(
                        json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])
                    ),
                    batching_window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                )
            )

    def _api(self) -> None:
        resources = dict(resources_of(self.template, "AWS::ApiGateway::Resource"))

        def path_of(resource_ref: dict[str, Any]) -> str:
            if "Fn::GetAtt" in resource_ref:  # the RestApi's root resource
                return ""
            props = resources[resource_ref["Ref"]]
            return f"{path_of(props['ParentId'])}/{props['PathPart']}"

        for _, props in resources_of(self.template, "AWS::ApiGateway::Method"):
            uri = str(self.resolver.resolve(props["Integration"]["Uri"]))
            function_arn = re.search(r"(arn:aws:lambda:[^/]+)/invocations", uri)
            if function_arn is None:
                continue
            self.cloud.routes.append(
                Route(
                    method=props["HttpMethod"],
                    path=path_of(props["ResourceId"]) or "/",
                    function=self._function_logical_id(function_arn.group(1)),
                    api_key_required=bool(props.get("ApiKeyRequired", False)),
                )
            )
        for _, props in resources_of(self.template, "AWS::ApiGateway::GatewayResponse"):
            self.cloud.gateway_responses[props["ResponseType"]] = GatewayResponse(
                status_code=int(props.get("StatusCode", 500)),
                body=props.get("ResponseTemplates", {}).get("application/json", "{}"),
            )

    def _state_machines(self) -> None:
        sfn = self.clients("stepfunctions")
        for logical_id, raw in resources_of(self.template, "AWS::StepFunctions::StateMachine"):
            props = self._props(raw)
            definition = props.get("DefinitionString") or json.dumps(props["Definition"])
            resource = self.physical[logical_id]
            created = sfn.create_state_machine(
                name=resource.attributes["Name"],
                definition=definition,
                roleArn=props["RoleArn"],
                type=props.get("StateMachineType", "STANDARD"),
            )
            resource.ref = created["stateMachineArn"]
            self.cloud.state_machines[logical_id] = created["stateMachineArn"]

    def _schedules(self) -> None:
        # EventBridge schedule rules are not run by moto: local_stack.scheduler invokes their targets.
        for logical_id, raw in resources_of(self.template, "AWS::Events::Rule"):
            props = self._props(raw)
            if "ScheduleExpression" not in props or props.get("State", "ENABLED") != "ENABLED":
                continue
            for target in props.get("Targets", []):
                if not str(target.get("Arn", "")).startswith("arn:aws:lambda:"):
                    continue
                self.cloud.schedules.append(
                    ScheduleRule(
                        logical_id=logical_id,
                        name=physical_name(self.stack_name, logical_id, max_length=64),
                        arn=f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{physical_name(self.stack_name, logical_id)}",
                        expression=props["ScheduleExpression"],
                        function=self._function_logical_id(target["Arn"]),
                        input=target.get("Input"),
                    )
                )
