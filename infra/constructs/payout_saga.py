"""The pay-out saga on Step Functions (Standard), started with name = payout_id.

  ClaimReservation wallet: RESERVED#<payout> names this execution, only if no other execution is named
                   there; never removed, so the payout's funds are reserved by one execution for ever
                   (a later one - a re-POST, or the same name reused after 90 days - ends AlreadyReserved)
  ReserveFunds     wallet: available -= amount, reserved += amount, HOLD#<payout> = amount,
                   only if available >= amount and the hold is new (concurrent payouts cannot overdraw;
                   a retried reservation cannot reserve twice: ConfirmHold tells "mine already" apart
                   from "insufficient funds")
  LedgerInTransit  ledger postings queue: seller_payable -> payout_in_transit
  ExecutePayout    payout queue .waitForTaskToken: the executor submits it to the PSP (key = payout_id)
  MarkInTransit    payouts table: PROCESSING -> IN_TRANSIT
  AwaitConfirmation payout queue .waitForTaskToken: answered when the PSP's webhook says paid / failed
  paid:            LedgerCashOut (payout_in_transit -> psp_receivable), SettleHold, MarkPaid
  failed:          ReleaseHold (reserved -> available), LedgerReversal, MarkFailed   (compensation)

Every task has a timeout, retries for transient errors and catches; what no retry can fix ends in
NeedsAttention (the failed-executions alarm) without releasing money whose fate is unknown.

The wallet's key layout comes from functions.wallet.keys and the account names from
functions.ledger.accounts, the modules the services themselves use."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from functions.ledger import accounts
from functions.psp.settings import default_retry_policy
from functions.wallet import keys
from infra.nag import SFN_LOGS_REASON, acknowledge, acknowledge_kms_grants

CONDITION_FAILED = "DynamoDB.ConditionalCheckFailedException"
DYNAMO_TRANSIENT = [
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.InternalServerErrorException",
    "DynamoDB.ThrottlingException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.TransactionConflictException",
    "DynamoDB.AmazonDynamoDBException",
    "States.Timeout",
]
SQS_TRANSIENT = ["SQS.SdkClientException", "SQS.AmazonSQSException", "SQS.KmsThrottledException"]
TASK_TIMEOUT = sfn.Timeout.duration(Duration.seconds(30))

S = sfn.JsonPath.string_at
N = sfn.JsonPath.number_at
V = tasks.DynamoAttributeValue


def _retry(task: sfn.TaskStateBase, errors: list[str], attempts: int = 4) -> None:
    task.add_retry(
        errors=errors,
        interval=Duration.seconds(1),
        max_attempts=attempts,
        backoff_rate=2,
        max_delay=Duration.seconds(30),
        jitter_strategy=sfn.JitterType.FULL,
    )


EXECUTE_TIMEOUT = Duration.seconds(default_retry_policy().max_age_seconds + 3600)


class PayoutSaga(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        wallet_table: dynamodb.ITable,
        payouts_table: dynamodb.ITable,
        payout_queue: sqs.IQueue,
        postings_queue: sqs.IQueue,
        # Longer than the payout queue retries a message (its maximum age): a task message can never
        # outlive its token, so no retried message pays out after the saga has given up on it.
        execute_timeout: Duration = EXECUTE_TIMEOUT,
        confirmation_timeout: Duration = Duration.days(5),
    ) -> None:
        super().__init__(scope, construct_id)
        self._wallet_table = wallet_table
        self._payouts_table = payouts_table
        self._postings_queue = postings_queue
        self.needs_attention = sfn.Fail(
            self,
            "NeedsAttention",
            error="PayoutNeedsAttention",
            cause="A step failed beyond its retries or the PSP never answered; reserved funds stay held.",
        )

        # This claim's identity: the execution's ARN (it repeats when a name is reused after 90 days) and when
        # it entered this state (Retry stays in the state; a later execution enters anew). Not
        # $$.Execution.StartTime: moto 5.x hands it to States.Format as a datetime, which fails.
        this_claim = sfn.JsonPath.format("{} {}", S("$$.Execution.Id"), S("$$.State.EnteredTime"))
        claim = tasks.DynamoUpdateItem(
            self,
            "ClaimReservation",
            table=wallet_table,
            key={
                keys.PARTITION_KEY: V.from_string(S("$.seller_id")),
                keys.SORT_KEY: V.from_string(sfn.JsonPath.format(keys.RESERVED_KEY_FORMAT, S("$.payout_id"))),
            },
            update_expression="SET reserved_by = :execution",
            # A retry of this claim passes; any other execution's is refused.
            condition_expression="attribute_not_exists(reserved_by) OR reserved_by = :execution",
            expression_attribute_values={":execution": V.from_string(this_claim)},
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=TASK_TIMEOUT,
        )
        _retry(claim, DYNAMO_TRANSIENT)
        already_reserved = sfn.Fail(
            self,
            "AlreadyReserved",
            error="PayoutAlreadyReserved",
            cause="Another execution of this payout reserved its funds; this one moves no money.",
        )
        reserve = self._wallet_update(
            "ReserveFunds",
            "SET available = available - :amount, reserved = if_not_exists(reserved, :zero) + :amount, #hold = :amount",
            condition="available >= :amount AND attribute_not_exists(#hold)",
        )
        confirm_hold = self._wallet_update(
            "ConfirmHold", "SET #hold = #hold", condition="attribute_exists(#hold)", amount=False
        )
        mark_refused = self._payout_update(
            "MarkRefused",
            "SET #s = :failed, failure_code = :code, updated_at = :now",
            condition="#s = :processing",
            values={":failed": V.from_string("FAILED"), ":code": V.from_string("insufficient_funds")},
        )
        # An execution that ends here paid nothing out: FAILED with error InsufficientFunds in its history
        # (the payout record says FAILED / insufficient_funds).
        refused = sfn.Fail(
            self,
            "InsufficientFunds",
            error="InsufficientFunds",
            cause="The seller's available balance is below the payout amount; nothing was reserved.",
        )
        ledger_in_transit = self._posting(
            "LedgerInTransit",
            "payout_in_transit",
            debit=sfn.JsonPath.format(accounts.SELLER_PAYABLE_FORMAT, S("$.seller_id")),
            credit=sfn.JsonPath.format(accounts.PAYOUT_IN_TRANSIT_FORMAT, S("$.seller_id")),
        )
        execute = tasks.SqsSendMessage(
            self,
            "ExecutePayout",
            queue=payout_queue,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            message_body=sfn.TaskInput.from_object(
                {
                    "action": "execute",
                    "payout_id": S("$.payout_id"),
                    "seller_id": S("$.seller_id"),
                    "amount": N("$.amount"),
                    "currency": S("$.currency"),
                    "payout_account_version": N("$.payout_account_version"),
                    "task_token": sfn.JsonPath.task_token,
                }
            ),
            task_timeout=sfn.Timeout.duration(execute_timeout),
            result_path="$.outcome",
        )
        # Re-sending the task is safe: the PSP call carries the payout id as its idempotency key.
        _retry(execute, [*SQS_TRANSIENT, "States.Timeout"], attempts=2)
        execute.add_catch(self.needs_attention, errors=["States.ALL"], result_path="$.error")
        mark_in_transit = self._payout_update(
            "MarkInTransit",
            "SET #s = :in_transit, psp_reference = :ref, updated_at = :now",
            condition="#s = :processing",
            values={":in_transit": V.from_string("IN_TRANSIT"), ":ref": V.from_string(S("$.outcome.psp_reference"))},
        )
        await_confirmation = tasks.SqsSendMessage(
            self,
            "AwaitConfirmation",
            queue=payout_queue,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            message_body=sfn.TaskInput.from_object(
                {"action": "await_confirmation", "payout_id": S("$.payout_id"), "task_token": sfn.JsonPath.task_token}
            ),
            task_timeout=sfn.Timeout.duration(confirmation_timeout),
            result_path="$.outcome",
        )
        _retry(await_confirmation, SQS_TRANSIENT)
        await_confirmation.add_catch(self.needs_attention, errors=["States.ALL"], result_path="$.error")

        # paid: finalise
        cash_out = self._posting(
            "LedgerCashOut",
            "payout_cash_out",
            debit=sfn.JsonPath.format(accounts.PAYOUT_IN_TRANSIT_FORMAT, S("$.seller_id")),
            credit=accounts.PSP_RECEIVABLE,
        )
        settle_hold = self._wallet_update(
            "SettleHold", "SET reserved = reserved - :amount REMOVE #hold", condition="attribute_exists(#hold)"
        )
        mark_paid = self._payout_update(
            "MarkPaid",
            "SET #s = :paid, updated_at = :now",
            condition="#s IN (:processing, :in_transit)",
            values={":paid": V.from_string("PAID"), ":in_transit": V.from_string("IN_TRANSIT")},
        )
        paid = sfn.Succeed(self, "Paid")

        # failed: compensate
        release_hold = self._wallet_update(
            "ReleaseHold",
            # The released funds are available again: the seller is due a payout (functions/wallet/keys.py).
            "SET available = available + :amount, reserved = reserved - :amount, #due = :currency REMOVE #hold",
            condition="attribute_exists(#hold)",
        )
        reversal = self._posting(
            "LedgerReversal",
            "payout_reversal",
            debit=sfn.JsonPath.format(accounts.PAYOUT_IN_TRANSIT_FORMAT, S("$.seller_id")),
            credit=sfn.JsonPath.format(accounts.SELLER_PAYABLE_FORMAT, S("$.seller_id")),
        )
        mark_failed = self._payout_update(
            "MarkFailed",
            "SET #s = :failed, failure_code = :code, updated_at = :now",
            condition="#s IN (:processing, :in_transit)",
            values={
                ":failed": V.from_string("FAILED"),
                ":in_transit": V.from_string("IN_TRANSIT"),
                ":code": V.from_string(S("$.outcome.failure_code")),
            },
        )
        compensated = sfn.Succeed(self, "Compensated", comment="The PSP failed the payout; the funds are back.")

        # A hold that is already gone / a payout already marked means the step happened before a retry.
        claim.add_catch(already_reserved, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        reserve.add_catch(confirm_hold, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        confirm_hold.add_catch(mark_refused, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        mark_refused.add_catch(refused, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        mark_in_transit.add_catch(await_confirmation, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        settle_hold.add_catch(mark_paid, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        mark_paid.add_catch(paid, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        release_hold.add_catch(reversal, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        mark_failed.add_catch(compensated, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        for task in (
            claim,
            reserve,
            confirm_hold,
            mark_refused,
            ledger_in_transit,
            mark_in_transit,
            cash_out,
            settle_hold,
            mark_paid,
            release_hold,
            reversal,
            mark_failed,
        ):
            task.add_catch(self.needs_attention, errors=["States.ALL"], result_path="$.error")

        compensate = release_hold.next(reversal).next(mark_failed).next(compensated)
        definition = (
            claim.next(reserve)
            .next(ledger_in_transit)
            .next(execute)
            .next(
                sfn.Choice(self, "Submitted?")
                .when(sfn.Condition.string_equals("$.outcome.outcome", "failed"), compensate)
                .otherwise(
                    mark_in_transit.next(await_confirmation).next(
                        sfn.Choice(self, "Paid?")
                        .when(
                            sfn.Condition.string_equals("$.outcome.outcome", "paid"),
                            cash_out.next(settle_hold).next(mark_paid).next(paid),
                        )
                        .otherwise(release_hold)
                    )
                )
            )
        )
        confirm_hold.next(ledger_in_transit)
        mark_refused.next(refused)

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
        acknowledge_kms_grants(self.state_machine.role)

    def _wallet_update(self, name: str, expression: str, *, condition: str, amount: bool = True) -> sfn.TaskStateBase:
        values = (
            {":amount": V.number_from_string(sfn.JsonPath.format("{}", S("$.amount"))), ":zero": V.from_number(0)}
            if amount and ":zero" in expression
            else {":amount": V.number_from_string(sfn.JsonPath.format("{}", S("$.amount")))}
            if amount
            else None
        )
        task = tasks.DynamoUpdateItem(
            self,
            name,
            table=self._wallet_table,
            key={
                keys.PARTITION_KEY: V.from_string(S("$.seller_id")),
                keys.SORT_KEY: V.from_string(sfn.JsonPath.format(keys.BALANCE_KEY_FORMAT, S("$.currency"))),
            },
            update_expression=expression,
            condition_expression=condition,
            expression_attribute_names={
                "#hold": sfn.JsonPath.format(keys.HOLD_ATTRIBUTE_FORMAT, S("$.payout_id")),
                **({"#due": keys.PAYOUT_DUE_ATTRIBUTE} if "#due" in expression else {}),
            },
            expression_attribute_values=(
                {**values, ":currency": V.from_string(S("$.currency"))}
                if values and ":currency" in expression
                else values
            ),
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=TASK_TIMEOUT,
        )
        _retry(task, DYNAMO_TRANSIENT)
        return task

    def _payout_update(
        self, name: str, expression: str, *, condition: str, values: dict[str, tasks.DynamoAttributeValue]
    ) -> sfn.TaskStateBase:
        task = tasks.DynamoUpdateItem(
            self,
            name,
            table=self._payouts_table,
            key={"payout_id": V.from_string(S("$.payout_id"))},
            update_expression=expression,
            condition_expression=condition,
            expression_attribute_names={"#s": "status"},
            expression_attribute_values={
                ":processing": V.from_string("PROCESSING"),
                ":now": V.from_string(S("$$.State.EnteredTime")),
                **values,
            },
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=TASK_TIMEOUT,
        )
        _retry(task, DYNAMO_TRANSIENT)
        return task

    def _posting(self, name: str, kind: str, *, debit: str, credit: str) -> sfn.TaskStateBase:
        """A JournalPosting (functions.common.events) for the ledger; its id is kind + payout id."""
        task = tasks.SqsSendMessage(
            self,
            name,
            queue=self._postings_queue,
            message_body=sfn.TaskInput.from_object(
                {
                    "producer": "payouts",
                    "kind": kind,
                    "business_id": S("$.payout_id"),
                    "currency": S("$.currency"),
                    "reference": S("$.payout_id"),
                    "lines": [
                        {"account": debit, "direction": "debit", "amount": N("$.amount")},
                        {"account": credit, "direction": "credit", "amount": N("$.amount")},
                    ],
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=TASK_TIMEOUT,
        )
        _retry(task, SQS_TRANSIENT)
        return task
