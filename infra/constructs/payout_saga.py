"""The pay-out saga on Step Functions (Standard): reserve the seller's funds with a conditional
write, never below zero; a refused reservation ends the execution as insufficient funds."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.nag import SFN_LOGS_REASON, acknowledge


class PayoutSaga(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, wallet_table: dynamodb.ITable) -> None:
        super().__init__(scope, construct_id)
        insufficient = sfn.Fail(
            self,
            "InsufficientFunds",
            error="InsufficientFunds",
            cause="The seller's available balance is below the payout amount.",
        )
        reserve = tasks.DynamoUpdateItem(
            self,
            "ReserveFunds",
            table=wallet_table,
            key={
                "seller_id": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.seller_id")),
                "sk": tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.format("BALANCE#{}", sfn.JsonPath.string_at("$.currency"))
                ),
            },
            update_expression="SET available = available - :amount, reserved = reserved + :amount",
            condition_expression="available >= :amount",
            expression_attribute_values={
                ":amount": tasks.DynamoAttributeValue.number_from_string(
                    sfn.JsonPath.format("{}", sfn.JsonPath.string_at("$.amount"))
                )
            },
            return_values=tasks.DynamoReturnValues.UPDATED_NEW,
            result_path="$.reservation",
        )
        reserve.add_retry(
            errors=[
                "DynamoDB.ProvisionedThroughputExceededException",
                "DynamoDB.InternalServerErrorException",
                "States.Timeout",
            ],
            interval=Duration.seconds(1),
            max_attempts=3,
            backoff_rate=2,
        )
        reserve.add_catch(insufficient, errors=["DynamoDB.ConditionalCheckFailedException"], result_path="$.error")
        definition = reserve.next(sfn.Succeed(self, "Reserved"))
        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_YEAR)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.days(7),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        acknowledge(self.state_machine.role, "AwsSolutions-IAM5[Resource::*]", SFN_LOGS_REASON)
