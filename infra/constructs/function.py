"""A Python Lambda function as every service uses it: arm64, latest Python, X-Ray, log retention,
Powertools settings, and an environment built from the function's own settings model, encrypted at rest
with the stack's Data key."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.common.settings import FunctionSettings, lambda_environment
from infra.bundle import lambda_code
from infra.config import stage_config
from infra.constructs.encryption import encryption_key
from infra.constructs.tenants import Tenants
from infra.nag import XRAY_REASON, acknowledge, acknowledge_kms_grants

RUNTIME = lambda_.Runtime.PYTHON_3_14


class ServiceFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        settings_model: type[FunctionSettings],
        service_name: str,
        description: str,
        timeout: Duration = Duration.seconds(30),
        memory_size: int = 512,
        reserved_concurrency: int | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(scope, construct_id)
        if "function_timeout_seconds" in settings_model.model_fields:
            # The function's time budget is checked against its own timeout (functions/psp/settings.py).
            settings.setdefault("function_timeout_seconds", int(timeout.to_seconds()))
        reads_tenants = "tenants_table" in settings_model.model_fields
        if reads_tenants:
            settings.setdefault("tenants_table", Tenants.of(self).table.table_name)
        environment = lambda_environment(settings_model, service_name=service_name, **settings)
        if "function_timeout_seconds" in settings_model.model_fields:
            # Fails synthesis when a unit of work cannot finish within the timeout (the values it checks
            # are plain numbers here; names and ARNs are tokens, and strings either way).
            settings_model.from_env(environment)
        self.service_name = service_name
        # What the function runs and the settings it reads: the infra tests map one to the other.
        self.handler = handler
        self.settings_model = settings_model
        # Retained with the stack's data: the logs are part of the payments audit trail.
        self.log_group = logs.LogGroup(
            self, "Logs", retention=stage_config(self).log_retention, removal_policy=RemovalPolicy.RETAIN
        )
        # A role of its own with no managed policies: only its log group, plus what grants add.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{service_name}: {description}"[:1000],
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            role=self.role,
            handler=handler,
            code=lambda_code(),
            timeout=timeout,
            memory_size=memory_size,
            description=description,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            reserved_concurrent_executions=reserved_concurrency,
            # Where an asynchronous invocation (a schedule) goes once Lambda's retries are spent.
            dead_letter_queue=dead_letter_queue,
            environment=environment,
            environment_encryption=encryption_key(self, "Data"),
        )
        if reads_tenants:
            Tenants.of(self).grant_resolve(self.function)
        acknowledge(self.role, "AwsSolutions-IAM5[Resource::*]", XRAY_REASON)
        acknowledge_kms_grants(self.role)
