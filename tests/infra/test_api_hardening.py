"""The public API as deployed (dev stage, the template's defaults): API keys with a usage plan
(throttling and quota), stage throttling, access logs, no request-body logging, a WAF web ACL with AWS
managed rule groups, a per-IP rate rule and the contract's 64 KB body limit, and no CORS."""

from __future__ import annotations

import json
from typing import Any

from infra.config import StageConfig
from tests.conftest import Synthesized
from tests.infra.template_facts import base_name, by_base_name, references

DEV = StageConfig.for_stage("dev")
# The PSP authenticates its webhooks with a signature, not our API key.
UNKEYED_ROUTES = {("POST", "webhooks/psp"), ("POST", "webhooks/payout-provider")}


def _one(synthesized: Synthesized, resource_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = synthesized.resources(resource_type).items()
    return logical_id, resource["Properties"]


def _path(synthesized: Synthesized, resource_ref: dict[str, Any]) -> str:
    resources = synthesized.resources("AWS::ApiGateway::Resource")
    if "Ref" not in resource_ref:
        return ""
    props = resources[resource_ref["Ref"]]["Properties"]
    parent = _path(synthesized, props["ParentId"])
    return f"{parent}/{props['PathPart']}" if parent else props["PathPart"]


def test_usage_plan_throttles_and_caps_each_key_per_day(synthesized: Synthesized) -> None:
    stage_id, _ = _one(synthesized, "AWS::ApiGateway::Stage")
    _, plan = _one(synthesized, "AWS::ApiGateway::UsagePlan")
    assert (
        plan["Throttle"]
        == {"RateLimit": DEV.api_rate_limit, "BurstLimit": DEV.api_burst_limit}
        == {
            "RateLimit": 50,
            "BurstLimit": 100,
        }
    )
    assert plan["Quota"] == {"Limit": 100_000, "Period": "DAY"}
    (api_stage,) = plan["ApiStages"]
    assert api_stage["Stage"] == {"Ref": stage_id}
    key_id, _ = _one(synthesized, "AWS::ApiGateway::ApiKey")
    _, plan_key = _one(synthesized, "AWS::ApiGateway::UsagePlanKey")
    assert plan_key["KeyId"] == {"Ref": key_id} and plan_key["KeyType"] == "API_KEY"


def test_every_method_needs_the_api_key_but_the_signed_webhook(synthesized: Synthesized) -> None:
    methods = [m["Properties"] for m in synthesized.resources("AWS::ApiGateway::Method").values()]
    assert len(methods) >= 7
    for method in methods:
        route = (method["HttpMethod"], _path(synthesized, method["ResourceId"]).removeprefix("v1/"))
        assert method.get("ApiKeyRequired", False) is (route not in UNKEYED_ROUTES), route
        assert method["AuthorizationType"] == "NONE"
        assert method["Integration"]["Type"] == "AWS_PROXY"


def test_stage_throttles_traces_and_writes_json_access_logs_without_bodies(synthesized: Synthesized) -> None:
    _, stage = _one(synthesized, "AWS::ApiGateway::Stage")
    assert stage["TracingEnabled"] is True
    (settings,) = stage["MethodSettings"]
    assert settings == {
        "DataTraceEnabled": False,
        "HttpMethod": "*",
        "LoggingLevel": "ERROR",
        "MetricsEnabled": True,
        "ResourcePath": "/*",
        "ThrottlingBurstLimit": 100,
        "ThrottlingRateLimit": 50,
    }
    access_log = stage["AccessLogSetting"]
    (log_group,) = references(access_log["DestinationArn"])
    assert base_name(log_group) == "PublicApiAccessLogs"
    fields = json.loads(access_log["Format"])
    assert {"requestId", "ip", "httpMethod", "resourcePath", "status", "requestTime", "responseLength"} <= set(fields)
    retention = synthesized.resources("AWS::Logs::LogGroup")[log_group]["Properties"]["RetentionInDays"]
    assert retention == DEV.log_retention_days == 30


def test_cors_is_off(synthesized: Synthesized) -> None:
    methods = [m["Properties"]["HttpMethod"] for m in synthesized.resources("AWS::ApiGateway::Method").values()]
    assert "OPTIONS" not in methods
    for response in synthesized.resources("AWS::ApiGateway::GatewayResponse").values():
        headers = response["Properties"].get("ResponseParameters", {})
        assert not any("Access-Control" in h for h in headers)
    for method in synthesized.resources("AWS::ApiGateway::Method").values():
        assert "Access-Control" not in json.dumps(method["Properties"].get("MethodResponses", []))


def _rules(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    _, acl = _one(synthesized, "AWS::WAFv2::WebACL")
    return {rule["Name"]: rule for rule in acl["Rules"]}


def test_web_acl_runs_aws_managed_rule_groups(synthesized: Synthesized) -> None:
    rules = _rules(synthesized)
    managed = {
        name: rule["Statement"]["ManagedRuleGroupStatement"]
        for name, rule in rules.items()
        if "ManagedRuleGroupStatement" in rule["Statement"]
    }
    assert set(managed) == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }
    assert all(group["VendorName"] == "AWS" for group in managed.values())
    assert all(rules[name]["OverrideAction"] == {"None": {}} for name in managed)
    # The common set's 8 KB body rule would block a 100-order checkout: counted; our 64 KB rule decides.
    assert managed["AWSManagedRulesCommonRuleSet"]["RuleActionOverrides"] == [
        {"ActionToUse": {"Count": {}}, "Name": "SizeRestrictions_BODY"}
    ]


def test_web_acl_rate_limits_each_ip_with_a_json_429(synthesized: Synthesized) -> None:
    rule = _rules(synthesized)["RatePerIp"]
    assert rule["Priority"] == 0
    assert rule["Statement"]["RateBasedStatement"] == {"AggregateKeyType": "IP", "Limit": 50 * 300}
    assert rule["Action"] == {
        "Block": {"CustomResponse": {"CustomResponseBodyKey": "rate_limited", "ResponseCode": 429}}
    }


def test_web_acl_refuses_bodies_over_64_kb_with_a_json_413(synthesized: Synthesized) -> None:
    _, acl = _one(synthesized, "AWS::WAFv2::WebACL")
    rule = _rules(synthesized)["BodySizeLimit"]
    assert rule["Statement"]["SizeConstraintStatement"] == {
        "ComparisonOperator": "GT",
        "FieldToMatch": {"Body": {"OversizeHandling": "MATCH"}},
        "Size": 65536,
        "TextTransformations": [{"Priority": 0, "Type": "NONE"}],
    }
    assert rule["Action"]["Block"]["CustomResponse"] == {"CustomResponseBodyKey": "body_too_large", "ResponseCode": 413}
    # WAF inspects up to 64 KB of an API Gateway body; anything larger is oversize, and so matches.
    assert acl["AssociationConfig"] == {"RequestBody": {"API_GATEWAY": {"DefaultSizeInspectionLimit": "KB_64"}}}
    bodies = acl["CustomResponseBodies"]
    assert json.loads(bodies["body_too_large"]["Content"])["error"]["type"] == "invalid_request_error"
    assert json.loads(bodies["rate_limited"]["Content"])["error"]["code"] == "rate_limited"
    assert {b["ContentType"] for b in bodies.values()} == {"APPLICATION_JSON"}


def test_web_acl_is_attached_to_the_stage(synthesized: Synthesized) -> None:
    acl_id, acl = _one(synthesized, "AWS::WAFv2::WebACL")
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    _, association = _one(synthesized, "AWS::WAFv2::WebACLAssociation")
    assert references(association["WebACLArn"]) == [acl_id]
    (stage_id,) = by_base_name(synthesized.template, "AWS::ApiGateway::Stage").values()
    assert stage_id[0] in references(association["ResourceArn"])
    assert all(r["VisibilityConfig"]["CloudWatchMetricsEnabled"] for r in acl["Rules"])


def test_each_api_function_may_be_invoked_by_the_apis_stage_once(synthesized: Synthesized) -> None:
    # Given the functions the API's methods integrate with
    rest_api, _ = _one(synthesized, "AWS::ApiGateway::RestApi")
    integrated = {
        function
        for method in synthesized.resources("AWS::ApiGateway::Method").values()
        for function in references(method["Properties"]["Integration"]["Uri"])
    }
    assert len(integrated) >= 10
    permissions = [
        p["Properties"]
        for p in synthesized.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    # Then each has one permission (not two per method: the stack stays under CloudFormation's 500 resources),
    # for this API's deployed stage only (no console test invocations, no other API)
    assert sorted(references(p["FunctionName"])[0] for p in permissions) == sorted(integrated)
    for permission in permissions:
        assert permission["Action"] == "lambda:InvokeFunction"
        source = permission["SourceArn"]["Fn::Join"][1]
        assert references(source) == [rest_api]
        assert source[-1] == f"/{DEV.stage}/*/*"
        assert ":execute-api:" in source[2]
