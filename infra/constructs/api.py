"""The public REST API: API Gateway with API keys, a usage plan (throttling and a daily quota), request
validation, access logs, a WAF web ACL (AWS managed rule groups, a per-IP rate rule and the contract's
64 KB body limit), no CORS (server-to-server API: no browser origin is allowed), and error bodies in the
contract's shape even for errors API Gateway or WAF answer themselves. Limits come from the stage config."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.config import stage_config
from infra.nag import acknowledge_checkov

NO_CACHE_REASON = (
    "Payment, payout, wallet and ledger responses change with every write and are per caller: a cached "
    "response would show a stale status or balance, so the stage caches nothing."
)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: lambda_.IFunction
    api_key_required: bool = True
    # Required for a route without the API key: who authenticates the caller instead, and how.
    unkeyed_reason: str = ""

    def __post_init__(self) -> None:
        if not self.api_key_required and len(self.unkeyed_reason) < 60:
            raise ValueError(f"{self.method} {self.path}: say how a caller without an API key is authenticated")


MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
# The common rule set blocks bodies over 8 KB; a 100-order checkout is larger. Count it instead, and
# enforce the contract's own limit (MAX_BODY_BYTES) with our rule.
COUNTED_MANAGED_RULES = {"AWSManagedRulesCommonRuleSet": ("SizeRestrictions_BODY",)}
MAX_BODY_BYTES = 64 * 1024
# WAF inspects this much of a body for API Gateway; anything larger is "oversize" and, by our rule, blocked.
BODY_INSPECTION_LIMIT = "KB_64"


WAF_ERRORS = {
    "rate_limited": {"type": "api_error", "code": "rate_limited", "message": "Too many requests."},
    "body_too_large": {
        "type": "invalid_request_error",
        "code": "body_too_large",
        "message": f"Request bodies are limited to {MAX_BODY_BYTES // 1024} KB.",
    },
}


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _lambda_proxy(function: lambda_.IFunction) -> apigw.AwsIntegration:
    """LambdaIntegration's proxy integration, without its per-method invoke permissions (see PaymentsApi)."""
    return apigw.AwsIntegration(
        proxy=True, service="lambda", path=f"2015-03-31/functions/{function.function_arn}/invocations"
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
        rate_limit: int | None = None,
        burst_limit: int | None = None,
        daily_quota: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        config = stage_config(self)
        rate_limit = rate_limit or config.api_rate_limit
        burst_limit = burst_limit or config.api_burst_limit
        daily_quota = daily_quota or config.api_daily_quota
        access_logs = logs.LogGroup(self, "AccessLogs", retention=config.log_retention)
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
                data_trace_enabled=False,  # never log request bodies (payment data)
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
        invoked: dict[str, lambda_.IFunction] = {}
        for route in routes:
            resource = self.api.root.resource_for_path(route.path)
            method = resource.add_method(
                route.method,
                _lambda_proxy(route.function),
                api_key_required=route.api_key_required,
                request_validator=validator,
            )
            if not route.api_key_required:
                acknowledge_checkov(method, "CKV_AWS_59", route.unkeyed_reason)
            invoked.setdefault(route.function.node.path, route.function)
        # One invoke permission per function, from this API's deployed stage: LambdaIntegration's two per
        # method (the stage's and the console's test invoke) would spend a resource of CloudFormation's 500
        # per stack on each, for no real narrowing (only this template's integrations point at a function).
        for function in invoked.values():
            function.add_permission(
                f"{construct_id}Invoke",
                principal=iam.ServicePrincipal("apigateway.amazonaws.com"),
                source_arn=self.api.arn_for_execute_api(stage=stage_name),
            )
        acknowledge_checkov(self.api.deployment_stage, "CKV_AWS_120", NO_CACHE_REASON)
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
        self.web_acl = self._web_acl(rate_per_5_minutes=config.waf_rate_limit_per_ip)
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )

    def _web_acl(self, *, rate_per_5_minutes: int) -> wafv2.CfnWebACL:
        def block(status: int, body_key: str) -> wafv2.CfnWebACL.RuleActionProperty:
            return wafv2.CfnWebACL.RuleActionProperty(
                block=wafv2.CfnWebACL.BlockActionProperty(
                    custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                        response_code=status, custom_response_body_key=body_key
                    )
                )
            )

        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name="RatePerIp",
                priority=0,
                action=block(429, "rate_limited"),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=rate_per_5_minutes, aggregate_key_type="IP"
                    )
                ),
                visibility_config=_visibility("RatePerIp"),
            ),
            wafv2.CfnWebACL.RuleProperty(
                name="BodySizeLimit",
                priority=1,
                action=block(413, "body_too_large"),
                statement=wafv2.CfnWebACL.StatementProperty(
                    size_constraint_statement=wafv2.CfnWebACL.SizeConstraintStatementProperty(
                        field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                            body=wafv2.CfnWebACL.BodyProperty(oversize_handling="MATCH")
                        ),
                        comparison_operator="GT",
                        size=MAX_BODY_BYTES,
                        text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
                    )
                ),
                visibility_config=_visibility("BodySizeLimit"),
            ),
        ]
        rules.extend(
            wafv2.CfnWebACL.RuleProperty(
                name=group,
                priority=len(rules) + index,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=group,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                            )
                            for rule in COUNTED_MANAGED_RULES.get(group, ())
                        ]
                        or None,
                    )
                ),
                visibility_config=_visibility(group),
            )
            for index, group in enumerate(MANAGED_RULE_GROUPS)
        )
        return wafv2.CfnWebACL(
            self,
            "WebAcl",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            scope="REGIONAL",
            rules=rules,
            visibility_config=_visibility("PaymentsApi"),
            association_config=wafv2.CfnWebACL.AssociationConfigProperty(
                request_body={
                    "API_GATEWAY": wafv2.CfnWebACL.RequestBodyAssociatedResourceTypeConfigProperty(
                        default_size_inspection_limit=BODY_INSPECTION_LIMIT
                    )
                }
            ),
            custom_response_bodies={
                key: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON", content=json.dumps({"error": error})
                )
                for key, error in WAF_ERRORS.items()
            },
        )
