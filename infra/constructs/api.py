"""The public REST API: API Gateway with API keys, a usage plan, request validation, access logs,
and error bodies in the contract's shape even for errors API Gateway answers itself."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: lambda_.IFunction
    api_key_required: bool = True


MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _error_template(error_type: str, code: str, message: str) -> dict[str, str]:
    return {"application/json": json.dumps({"error": {"type": error_type, "code": code, "message": message}})}


class PaymentsApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        routes: list[Route],
        rate_limit: int = 200,
        burst_limit: int = 400,
        daily_quota: int = 5_000_000,
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(self, "AccessLogs", retention=logs.RetentionDays.ONE_YEAR)
        self.api = apigw.RestApi(
            self,
            "Api",
            description="Marketplace payments API",
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                throttling_rate_limit=rate_limit,
                throttling_burst_limit=burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
            ),
            endpoint_types=[apigw.EndpointType.REGIONAL],
        )
        validator = self.api.add_request_validator(
            "Validator", validate_request_parameters=True, validate_request_body=True
        )
        for route in routes:
            resource = self.api.root.resource_for_path(route.path)
            resource.add_method(
                route.method,
                apigw.LambdaIntegration(route.function, proxy=True),
                api_key_required=route.api_key_required,
                request_validator=validator,
            )
        self.api.add_gateway_response(
            "InvalidApiKey",
            type=apigw.ResponseType.INVALID_API_KEY,
            status_code="403",
            templates=_error_template("authentication_error", "invalid_api_key", "Missing or invalid x-api-key."),
        )
        # API Gateway answers an unknown path with "missing authentication token"; say what it is.
        self.api.add_gateway_response(
            "UnknownRoute",
            type=apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
            status_code="404",
            templates=_error_template("not_found", "route_not_found", "No such route."),
        )
        self.api.add_gateway_response(
            "Throttled",
            type=apigw.ResponseType.THROTTLED,
            status_code="429",
            templates=_error_template("api_error", "rate_limited", "Too many requests."),
        )
        self.api.add_gateway_response(
            "QuotaExceeded",
            type=apigw.ResponseType.QUOTA_EXCEEDED,
            status_code="429",
            templates=_error_template("api_error", "quota_exceeded", "Request quota exceeded."),
        )
        self.api_key = self.api.add_api_key("ClientKey", description="Marketplace checkout client")
        plan = self.api.add_usage_plan(
            "UsagePlan",
            throttle=apigw.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
            quota=apigw.QuotaSettings(limit=daily_quota, period=apigw.Period.DAY),
        )
        plan.add_api_key(self.api_key)
        plan.add_api_stage(stage=self.api.deployment_stage)
        self.web_acl = self._web_acl(rate_per_5_minutes=rate_limit * 300)
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )

    def _web_acl(self, *, rate_per_5_minutes: int) -> wafv2.CfnWebACL:
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name=group,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=group
                    )
                ),
                visibility_config=_visibility(group),
            )
            for priority, group in enumerate(MANAGED_RULE_GROUPS)
        ]
        rules.append(
            wafv2.CfnWebACL.RuleProperty(
                name="RatePerIp",
                priority=len(rules),
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=rate_per_5_minutes, aggregate_key_type="IP"
                    )
                ),
                visibility_config=_visibility("RatePerIp"),
            )
        )
        return wafv2.CfnWebACL(
            self,
            "WebAcl",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            scope="REGIONAL",
            rules=rules,
            visibility_config=_visibility("PaymentsApi"),
        )
