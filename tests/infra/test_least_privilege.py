"""Least privilege, asserted on the synthesized template: every IAM role's statements against an
allow-list of the resources each role may touch and how; no '*' resources beyond the AWS services that
support nothing else; no AWS-managed FullAccess policies; the ledger is append-only by IAM.

A new role, or a new grant on an existing one, fails here until it is added to ALLOWED below: that is
the review step for every permission the stack gives."""

from __future__ import annotations

from typing import Any

import pytest

from local_stack.template import REGION
from tests.conftest import Synthesized
from tests.infra.template_facts import as_list, base_name, by_base_name, resource_name

DDB_READ = {
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:Query",
    "dynamodb:Scan",
}
DDB_READ_WRITE = DDB_READ | {
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
}
# The ledger's writers: conditional puts and reads; never UpdateItem, DeleteItem or BatchWriteItem.
LEDGER_APPEND = {"dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:Query"}
DDB_STREAM = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
SFN_UPDATE = {"dynamodb:UpdateItem"}
# The ledger's balance records: moved by the appending transaction only (UpdateItem's ADD), never deleted.
BALANCE_UPDATE = {"dynamodb:UpdateItem"}
# The wallet's own roles: item actions on the table itself, no Scan, Delete or index.
WALLET_CREDIT = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
}
SQS_SEND = {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
SFN_SQS_SEND = {"sqs:SendMessage"}
SQS_CONSUME = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
}
# Item-level actions of the internet-facing webhook role and the recovery role: what their code calls.
ITEM_READ_UPDATE = {"dynamodb:GetItem", "dynamodb:UpdateItem"}
ITEM_READ_PUT = {"dynamodb:GetItem", "dynamodb:PutItem"}
# Storing a refund: its put and its charge's conditional update in one transaction, and the reads.
REFUND_RESERVE = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"}
# Backoff by age (the PSP workers, webhook delivery, the wallet's holds and refunds workers): ChangeMessageVisibility
# on the worker's own queue; what it dead-letters itself goes to its own DLQ.
BACKOFF = {"sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"}
QUERY = {"dynamodb:Query"}
SECRET_READ = {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
START_EXECUTION = {"states:StartExecution"}
TASK_RESPONSE = {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}
S3_READ = {"s3:GetObject", "s3:GetObjectVersion"}
S3_WRITE = {"s3:PutObject"}
# A Distributed Map runs child executions of its own state machine.
OWN_EXECUTIONS = {"states:DescribeExecution", "states:StartExecution", "states:StopExecution"}

# Every role a function uses may also write its own log group (`<function>Logs`), send X-Ray segments and
# use the stack's KMS keys for the resources it is granted (checked below, not listed per role).
ALLOWED: dict[str, dict[str, set[str]]] = {
    "PayInPaymentApiRole": {
        "PayInPaymentsTable": DDB_READ_WRITE,
        "PayInIdempotencyTable": DDB_READ_WRITE,
        # Each order's amount_refunded, from the refund service's charge totals.
        "RefundsRefundsTable": {"dynamodb:BatchGetItem"},
        # Fulfilment: the order as charged (by key), and its release asked of the wallet's holds worker.
        "PayInExecutorTable": {"dynamodb:GetItem"},
        "HoldsWalletHoldsQueue": SQS_SEND,
    },
    "PayInDispatcherRole": {
        "PayInPaymentsTable": DDB_STREAM,
        "PayInExecutorQueue": SQS_SEND,
        "PayInDispatchFailuresQueue": SQS_SEND,
    },
    "PayInOrderStatusRole": {"PayInPaymentsTable": DDB_READ_WRITE, "PayInOrderStatusQueue": SQS_CONSUME},
    "PayInExecutorRole": {
        "PayInExecutorTable": DDB_READ_WRITE,
        "PayInExecutorTable/index/*": DDB_READ_WRITE,
        "PayInExecutorQueue": SQS_CONSUME | BACKOFF,
        "PayInExecutorQueueDlq": SQS_SEND,
        "PayInPspCircuitTable": ITEM_READ_PUT,
        "PayInWalletQueue": SQS_SEND,
        "PayInOrderStatusQueue": SQS_SEND,
        "EncryptionPspApiKey": SECRET_READ,
    },
    "PayInWalletRole": {
        "PayInWalletTable": WALLET_CREDIT,
        "PayInWalletQueue": SQS_CONSUME,
        "PayInLedgerQueue": SQS_SEND,
        "PayInOrderStatusQueue": SQS_SEND,
    },
    "PayInWalletApiRole": {"PayInWalletTable": {"dynamodb:GetItem", "dynamodb:Query"}},
    "PayInLedgerRole": {
        "PayInLedgerTable": LEDGER_APPEND,
        "PayInLedgerTable/index/*": LEDGER_APPEND,
        "PayInLedgerBalancesTable": BALANCE_UPDATE,
        "PayInLedgerQueue": SQS_CONSUME,
        "PayInOrderStatusQueue": SQS_SEND,
    },
    "PayInLedgerPostingsRole": {
        "PayInLedgerTable": LEDGER_APPEND,
        "PayInLedgerTable/index/*": LEDGER_APPEND,
        "PayInLedgerBalancesTable": BALANCE_UPDATE,
        "PayInLedgerPostingsQueue": SQS_CONSUME,
    },
    "PayInLedgerApiRole": {
        "PayInLedgerTable": DDB_READ,
        "PayInLedgerTable/index/*": DDB_READ,
        "PayInLedgerBalancesTable": DDB_READ,
    },
    "SettlementReconciliationRole": {
        "SettlementRunsTable": DDB_READ_WRITE,
        "SettlementSettlementsTable": DDB_READ_WRITE,
        "SettlementSettlementsTable/index/*": DDB_READ_WRITE,
        "PayInExecutorTable": DDB_READ,
        "PayInExecutorTable/index/*": DDB_READ,
        "SettlementFileQueue": SQS_CONSUME,
        "SettlementReviewQueue": SQS_SEND,
        "PayInLedgerPostingsQueue": SQS_SEND,
        "SettlementBucket/settlements/*": S3_READ,
        "SettlementBucket/reports/*": S3_WRITE,
        "SettlementLargeFileReconciliation": START_EXECUTION,
        # the payouts payout rows settle: read by id, and the paid ones of the file's span by index
        "PayoutsPayoutsTable": {"dynamodb:BatchGetItem"},
        "PayoutsPayoutsTable/index/by_status_updated": QUERY,
        # likewise the refunds and disputes refund, dispute and dispute_reversal rows settle
        "RefundsRefundsTable": {"dynamodb:BatchGetItem"},
        "RefundsRefundsTable/index/by_status_updated": QUERY,
        "DisputesDisputesTable": {"dynamodb:BatchGetItem"},
        "DisputesDisputesTable/index/by_status_created": QUERY,
        "DisputesDisputesTable/index/by_status_closed": QUERY,
    },
    # The deadline check: a day's MISSING record, and the listing of that day's settlement files.
    "SettlementDeadlineRole": {
        "SettlementRunsTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        "SettlementBucket": {"s3:ListBucket"},
        "PayoutsScheduleFailuresQueue": SQS_SEND,
    },
    "SettlementReconciliationApiRole": {"SettlementRunsTable": DDB_READ},
    "SettlementReconciliationRowsRole": {
        "SettlementRunsTable": {"dynamodb:GetItem"},  # the run's sender
        "SettlementSettlementsTable": DDB_READ_WRITE,
        "SettlementSettlementsTable/index/*": DDB_READ_WRITE,
        "PayInExecutorTable": DDB_READ,
        "PayInExecutorTable/index/*": DDB_READ,
        "SettlementRowsQueue": SQS_CONSUME,
        "PayInLedgerPostingsQueue": SQS_SEND,
        "SettlementLargeFileReconciliation": TASK_RESPONSE,
        "PayoutsPayoutsTable": {"dynamodb:BatchGetItem"},
        "RefundsRefundsTable": {"dynamodb:BatchGetItem"},
        "DisputesDisputesTable": {"dynamodb:BatchGetItem"},
    },
    # The Distributed Map for very large settlement files: reads the file (settlement files only), fans
    # rows out to the rows queue.
    "SettlementLargeFileReconciliationRole": {
        "SettlementBucket/settlements/*": {"s3:GetObject"},
        "SettlementRowsQueue": SFN_SQS_SEND,
        "SettlementFileQueue": SFN_SQS_SEND,
        "SettlementLargeFileReconciliation": OWN_EXECUTIONS,
        "SettlementLargeFileReconciliation/*:*": {"states:RedriveExecution"},
    },
    # Payouts (API, saga, scheduled run, the payout executor)
    "PayoutsPayoutApiRole": {
        "PayoutsPayoutsTable": DDB_READ_WRITE,
        "PayoutsPayoutsTable/index/*": DDB_READ_WRITE,  # (grant_read_write_data covers its indexes)
        "PayInWalletTable": {"dynamodb:GetItem"},
        "PayInIdempotencyTable": DDB_READ_WRITE,
        "PayoutsPayoutSagaStateMachine": START_EXECUTION,
        "SellersSellersTable": {"dynamodb:GetItem"},  # the seller's current account: version and last4
    },
    "PayoutsScheduledPayoutsRole": {
        "PayoutsPayoutsTable": DDB_READ_WRITE,
        "PayoutsPayoutsTable/index/*": DDB_READ_WRITE,
        # Balances by GetItem, the payout-due index by name, and the index's upkeep (UpdateItem limited by
        # dynamodb:Attributes to the index attribute and the balance it tests)
        "PayInWalletTable": ITEM_READ_UPDATE,
        "PayInWalletTable/index/by_payout_due": QUERY,
        "PayoutsPayoutSagaStateMachine": START_EXECUTION,
        "PayoutsScheduleFailuresQueue": SQS_SEND,
        "SellersSellersTable": {"dynamodb:GetItem"},
    },
    "PayoutsPayoutExecutorRole": {
        "PayoutsPayoutExecutionsTable": DDB_READ_WRITE,
        "PayoutsPayoutQueue": SQS_CONSUME | BACKOFF,
        "PayoutsPayoutQueueDlq": SQS_SEND,
        "PayInPspCircuitTable": ITEM_READ_PUT,
        "PayoutsPayoutSagaStateMachine": TASK_RESPONSE,
        # The payout provider's key, never the PSP's
        "PayoutProviderApiKey": SECRET_READ,
        # The account version a payout names, its numbers opened to pay the seller
        "SellersSellersTable": {"dynamodb:GetItem"},
        "SellersPayoutAccountsKey": {"kms:Decrypt"},
    },
    # Sellers API: a new account version and the current one (two conditional puts in a transaction), sealed
    # with the accounts key, which it can never open.
    "SellersSellersApiRole": {
        "SellersSellersTable": {"dynamodb:GetItem", "dynamodb:PutItem"},
        "SellersPayoutAccountsKey": {"kms:Encrypt"},
    },
    # PSP webhooks (internet-facing): item reads and conditional updates, never Scan, Delete or an index;
    # nothing of payouts (the payout provider's webhooks confirm those).
    "PspWebhooksFunctionRole": {
        "PayInExecutorTable": ITEM_READ_UPDATE,
        "PspWebhooksEventsTable": ITEM_READ_PUT,
        "PspWebhooksSigningSecret": SECRET_READ,
        "PayInWalletQueue": SQS_SEND,
        "PayInOrderStatusQueue": SQS_SEND,
        "DisputesNoticesQueue": SQS_SEND,
        "RefundsRefundsTable": ITEM_READ_UPDATE,
        "RefundsWalletRefundsQueue": SQS_SEND,
    },
    # The payout provider's webhooks (internet-facing): its own signing secret, the payout's execution item
    # (read, conditional update), the shared event log (its keys prefixed), and the saga's waiting task.
    "PayoutProviderWebhooksRole": {
        "PayoutsPayoutExecutionsTable": ITEM_READ_UPDATE,
        "PspWebhooksEventsTable": ITEM_READ_PUT,
        "PayoutProviderSigningSecret": SECRET_READ,
        "PayoutsPayoutSagaStateMachine": TASK_RESPONSE,
    },
    # Disputes: the worker creates and closes a dispute's item with the seller's balance in one transaction
    # (wallet UpdateItem only, limited by dynamodb:Attributes to the balance's amounts and a held order's
    # pending share; GetItem to read the hold); the API reads by id and by the order index, by name.
    "DisputesWorkerRole": {
        "DisputesDisputesTable": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"},
        "PayInWalletTable": {"dynamodb:UpdateItem", "dynamodb:GetItem"},
        "DisputesNoticesQueue": SQS_CONSUME,
        "PayInLedgerPostingsQueue": SQS_SEND,
    },
    "DisputesApiRole": {
        "DisputesDisputesTable": {"dynamodb:GetItem"},
        "DisputesDisputesTable/index/by_payment_order": QUERY,
    },
    # Refunds: the API reserves on the charge's total (a transaction) and reads the orders it refunds; the
    # executor and the orphan refunds act on refund items only; the wallet's refund worker as its credit one.
    "RefundsRefundApiRole": {
        "RefundsRefundsTable": REFUND_RESERVE,
        "PayInIdempotencyTable": DDB_READ_WRITE,
        "PayInExecutorTable": {"dynamodb:GetItem"},
        "PayInPaymentsTable": {"dynamodb:GetItem"},
    },
    "RefundsRefundDispatcherRole": {
        "RefundsRefundsTable": DDB_STREAM,
        "RefundsRefundQueue": SQS_SEND,
        "RefundsWalletRefundsQueue": SQS_SEND,
        "RefundsDispatchFailuresQueue": SQS_SEND,
    },
    "RefundsRefundExecutorRole": {
        "RefundsRefundsTable": ITEM_READ_UPDATE,
        "RefundsRefundQueue": SQS_CONSUME | BACKOFF,
        "RefundsRefundQueueDlq": SQS_SEND,
        "PayInPspCircuitTable": ITEM_READ_PUT,
        "RefundsWalletRefundsQueue": SQS_SEND,
        "EncryptionPspApiKey": SECRET_READ,
    },
    # The wallet's refund worker backs off on its own queue while a movement waits for its credit or debit.
    "RefundsWalletRefundsRole": {
        "PayInWalletTable": WALLET_CREDIT,
        "RefundsWalletRefundsQueue": SQS_CONSUME | BACKOFF,
        "RefundsWalletRefundsQueueDlq": SQS_SEND,
        "PayInLedgerPostingsQueue": SQS_SEND,
    },
    "RefundsOrphanRefundsRole": {
        "RefundsRefundsTable": REFUND_RESERVE,
        "PayInExecutorTable": DDB_STREAM,
        "RefundsOrphanRefundFailuresQueue": SQS_SEND,
    },
    # Fulfilment holds: the worker reads a hold and releases it (one transaction of Update items: no Put, no
    # index), and backs off on its own queue while a release waits for its credit; the hourly sweep reads the
    # due-hold index by name, and no item of the table.
    "HoldsWalletHoldsRole": {
        "PayInWalletTable": ITEM_READ_UPDATE,
        "HoldsWalletHoldsQueue": SQS_CONSUME | BACKOFF,
        "HoldsWalletHoldsQueueDlq": SQS_SEND,
        "PayInLedgerPostingsQueue": SQS_SEND,
    },
    "HoldsHoldSweepRole": {
        "PayInWalletTable/index/by_hold_due": QUERY,
        "HoldsWalletHoldsQueue": SQS_SEND,
        "PayoutsScheduleFailuresQueue": SQS_SEND,
    },
    # Recovery of undecided orders: the open-orders index by name, item reads and conditional updates.
    "RecoveryFunctionRole": {
        "PayInExecutorTable": ITEM_READ_UPDATE,
        "PayInExecutorTable/index/by_open": QUERY,
        "EncryptionPspApiKey": SECRET_READ,
        "PayInWalletQueue": SQS_SEND,
        "PayInOrderStatusQueue": SQS_SEND,
        "PayoutsScheduleFailuresQueue": SQS_SEND,
    },
    # Recovery of refunds left PENDING: the status index by name, item reads and conditional updates (and
    # the failure's transaction with the charge's total), the refund queue again, the wallet's hand-off.
    "RefundSweepFunctionRole": {
        "RefundsRefundsTable": ITEM_READ_UPDATE,
        "RefundsRefundsTable/index/by_status_updated": QUERY,
        "EncryptionPspApiKey": SECRET_READ,
        "RefundsRefundQueue": SQS_SEND,
        "RefundsWalletRefundsQueue": SQS_SEND,
        "PayoutsScheduleFailuresQueue": SQS_SEND,
    },
    "PayoutsPayoutSagaStateMachineRole": {
        "PayInWalletTable": SFN_UPDATE,
        "PayoutsPayoutsTable": SFN_UPDATE,
        "PayoutsPayoutQueue": SFN_SQS_SEND,
        "PayInLedgerPostingsQueue": SFN_SQS_SEND,
    },
    # The money auditor: read-only, by name (tables' items and named indexes, DLQ depths, the PSP API key);
    # its DLQ grants are checked in tests/infra/test_auditor.py (one per queue of the stack).
    "AuditorFunctionRole": {
        "PayInWalletTable": {"dynamodb:GetItem"},
        "PayInWalletTable/index/by_payout_due": QUERY,
        "PayInLedgerTable": {"dynamodb:GetItem"},
        "PayInLedgerTable/index/by_payment_order": QUERY,
        "PayInLedgerBalancesTable": {"dynamodb:GetItem", "dynamodb:Query"},
        "PayInExecutorTable": {"dynamodb:GetItem"},
        "PayInExecutorTable/index/by_decided_shard": QUERY,
        "PayInExecutorTable/index/by_failed_shard": QUERY,
        "PayInExecutorTable/index/by_open": QUERY,
        "RefundsRefundsTable": {"dynamodb:GetItem"},
        "RefundsRefundsTable/index/by_status_updated": QUERY,
        "EncryptionPspApiKey": SECRET_READ,
        "PayoutsScheduleFailuresQueue": SQS_SEND,
    },
    # Events for the marketplace: the API (endpoints by item, the event list by its indexes, the secrets key to
    # seal a new secret and reopen it for a retried registration), the recorder (the owners' streams, one
    # conditional put per event), the publisher (the events table's stream, the bus), the fan-out (a tenant's
    # endpoints, the delivery queue) and the delivery (an endpoint by key, decrypt its secret, its own queue).
    "EventsEventsApiRole": {
        "EventsWebhookEndpointsTable": {
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:DeleteItem",
        },
        "EventsEventsTable": {"dynamodb:GetItem"},
        "EventsEventsTable/index/by_tenant": QUERY,
        "EventsEventsTable/index/by_tenant_type": QUERY,
        "EventsWebhookSecretsKey": {"kms:Encrypt", "kms:Decrypt"},
    },
    "EventsRecorderRole": {
        "PayInPaymentsTable": DDB_STREAM,
        "PayoutsPayoutsTable": DDB_STREAM,
        "RefundsRefundsTable": DDB_STREAM,
        "DisputesDisputesTable": DDB_STREAM,
        "EventsEventsTable": ITEM_READ_PUT,
        "EventsStreamFailuresQueue": SQS_SEND,
    },
    "EventsPublisherRole": {
        "EventsEventsTable": DDB_STREAM,
        "EventsBus": {"events:PutEvents"},
        "EventsStreamFailuresQueue": SQS_SEND,
    },
    "EventsFanoutRole": {
        "EventsWebhookEndpointsTable": QUERY,
        "EventsFanoutQueue": SQS_CONSUME,
        "EventsDeliveryQueue": SQS_SEND,
    },
    "EventsDeliveryRole": {
        "EventsWebhookEndpointsTable": {"dynamodb:GetItem"},
        "EventsWebhookSecretsKey": {"kms:Decrypt"},
        "EventsDeliveryQueue": SQS_CONSUME | BACKOFF,
        "EventsDeliveryQueueDlq": SQS_SEND,
    },
    # CDK's singleton that applies the bucket's notification configuration at deploy time.
    "BucketNotificationsHandler050a0587b7544547bf325f094a3db834Role": {
        "SettlementBucket": {"s3:PutBucketNotification"}
    },
}
# Every function behind a keyed route reads its callers' tenants: one key's item at a time, nothing more.
TENANT_READERS = (
    "PayInPaymentApiRole",
    "PayInWalletApiRole",
    "PayInLedgerApiRole",
    "SettlementReconciliationApiRole",
    "PayoutsPayoutApiRole",
    "SellersSellersApiRole",
    "DisputesApiRole",
    "RefundsRefundApiRole",
    "EventsEventsApiRole",
)
for _reader in TENANT_READERS:
    ALLOWED[_reader]["TenantsTenantsTable"] = {"dynamodb:GetItem"}
# Actions AWS supports on '*' only.
STAR_ONLY = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "dynamodb:ListStreams",
}
# Step Functions' own log delivery and X-Ray sampling (state machine roles only).
STATE_MACHINE_STAR_ONLY = STAR_ONLY | {
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
}
KMS_KEYS = {"EncryptionDataKey", "EncryptionMessagesKey", "EncryptionLogsKey"}
KMS_ACTIONS = {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"}
LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
# The only AWS-managed policies in the stack, each acknowledged in infra/nag.py with its reason.
MANAGED_POLICIES = {
    "PublicApiCloudWatchRole": "AmazonAPIGatewayPushToCloudWatchLogs",
    "BucketNotificationsHandler050a0587b7544547bf325f094a3db834Role": "AWSLambdaBasicExecutionRole",
}


def _grants(synthesized: Synthesized) -> dict[str, dict[str, set[str]]]:
    """{role base name: {resource name: actions}} over every IAM policy in the template."""
    grants: dict[str, dict[str, set[str]]] = {}
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        props = policy["Properties"]
        for role in props["Roles"]:
            role_grants = grants.setdefault(base_name(role["Ref"]), {})
            for statement in props["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                assert "NotAction" not in statement and "NotResource" not in statement
                for resource in as_list(statement["Resource"]):
                    role_grants.setdefault(resource_name(resource), set()).update(as_list(statement["Action"]))
    return grants


def test_every_role_is_on_the_allow_list(synthesized: Synthesized) -> None:
    # Given the synthesized template
    roles = set(by_base_name(synthesized.template, "AWS::IAM::Role"))
    # Then every role with permissions is reviewed here (the API Gateway account role has a managed policy only)
    unknown = set(_grants(synthesized)) - set(ALLOWED)
    assert not unknown, f"roles not on the least-privilege allow-list: {sorted(unknown)}"
    assert roles - set(ALLOWED) <= set(MANAGED_POLICIES)


def _state_machine_roles(synthesized: Synthesized) -> set[str]:
    return {
        base_name(logical_id)
        for logical_id, role in synthesized.resources("AWS::IAM::Role").items()
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        if statement["Principal"].get("Service") == "states.amazonaws.com"
    }


def test_every_statement_is_allowed_for_its_role(synthesized: Synthesized) -> None:
    # Given every role's grants
    state_machine_roles = _state_machine_roles(synthesized)
    assert len(state_machine_roles) >= 2
    violations: list[str] = []
    for role, grants in _grants(synthesized).items():
        allowed = ALLOWED[role]
        own_logs = role.removesuffix("Role") + "Logs"
        is_state_machine = role in state_machine_roles
        for resource, actions in grants.items():
            if resource == "*":
                extra = actions - (STATE_MACHINE_STAR_ONLY if is_state_machine else STAR_ONLY)
            elif resource in KMS_KEYS:
                extra = actions - KMS_ACTIONS
            elif resource == own_logs:
                extra = actions - LOG_ACTIONS
            elif resource in allowed:
                extra = actions - allowed[resource]
            elif role == "AuditorFunctionRole" and resource.endswith("Dlq"):
                extra = actions - {"sqs:GetQueueAttributes"}  # every dead-letter queue's depth
            else:
                extra = actions
            if extra:
                violations.append(f"{role}: {sorted(extra)} on {resource}")
    # Then nothing is granted beyond the allow-list
    assert violations == []


def test_the_tenants_table_is_read_by_the_keyed_routes_functions_only(synthesized: Synthesized) -> None:
    readers = {role for role, grants in _grants(synthesized).items() if "TenantsTenantsTable" in grants}
    assert readers == set(TENANT_READERS)
    assert {_grants(synthesized)[role]["TenantsTenantsTable"] == {"dynamodb:GetItem"} for role in readers} == {True}


def test_every_function_has_a_role_of_its_own(synthesized: Synthesized) -> None:
    functions = [
        f for f in synthesized.resources("AWS::Lambda::Function").values() if "ZipFile" not in f["Properties"]["Code"]
    ]
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions]
    assert len(roles) == len(set(roles)) == len(functions)


def test_no_role_has_inline_policies_or_unacknowledged_managed_policies(synthesized: Synthesized) -> None:
    for logical_id, role in synthesized.resources("AWS::IAM::Role").items():
        props = role["Properties"]
        assert "Policies" not in props, logical_id
        managed = [str(m) for m in props.get("ManagedPolicyArns", [])]
        expected = MANAGED_POLICIES.get(base_name(logical_id))
        if expected is None:
            assert managed == [], logical_id
        else:
            assert len(managed) == 1 and expected in managed[0], logical_id
        assert not any("FullAccess" in m for m in managed), logical_id


@pytest.mark.parametrize("forbidden", ["dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"])
def test_the_ledger_is_append_only_by_iam(synthesized: Synthesized, forbidden: str) -> None:
    # Given every grant in the stack
    grants = _grants(synthesized)
    # Then no role at all may update, delete or batch-write ledger entries
    for role, role_grants in grants.items():
        for resource, actions in role_grants.items():
            if resource.startswith("PayInLedgerTable"):
                assert forbidden not in actions, role
                assert not any(a.endswith("*") or a.startswith("dynamodb:PartiQL") for a in actions), role
    # And the ledger's writers hold exactly the append set
    for writer in ("PayInLedgerRole", "PayInLedgerPostingsRole"):
        assert grants[writer]["PayInLedgerTable"] <= LEDGER_APPEND
    assert grants["PayInLedgerRole"]["PayInLedgerTable"] == LEDGER_APPEND


def test_no_statement_allows_every_action_of_a_service(synthesized: Synthesized) -> None:
    for role, grants in _grants(synthesized).items():
        for resource, actions in grants.items():
            wildcards = {a for a in actions if a == "*" or a.endswith(":*")}
            assert not wildcards, f"{role}: {wildcards} on {resource}"


def test_only_the_psp_callers_read_the_psp_api_key(synthesized: Synthesized) -> None:
    readers = {role for role, grants in _grants(synthesized).items() if "EncryptionPspApiKey" in grants}
    # (the auditor looks charges up by idempotency key: never a charge)
    assert readers == {
        "PayInExecutorRole",
        "RecoveryFunctionRole",
        "RefundSweepFunctionRole",
        "AuditorFunctionRole",
        "RefundsRefundExecutorRole",
    }
    for reader in readers:
        assert _grants(synthesized)[reader]["EncryptionPspApiKey"] == SECRET_READ


@pytest.mark.parametrize("role", ["PspWebhooksFunctionRole", "PayoutProviderWebhooksRole", "RecoveryFunctionRole"])
def test_the_webhook_and_recovery_roles_hold_item_actions_only(synthesized: Synthesized, role: str) -> None:
    # Given the internet-facing webhook role and the recovery role
    tables = {
        resource: actions for resource, actions in _grants(synthesized)[role].items() if "dynamodb:" in str(actions)
    }
    assert tables
    for resource, actions in tables.items():
        # Then no grant_read_write_data set: no Scan, DeleteItem, BatchWriteItem, batch reads or streams
        assert not actions & {
            "dynamodb:Scan",
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:BatchGetItem",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
        }, resource
        # And an index only by name, for Query alone
        assert not resource.endswith("/index/*"), resource
        if "/index/" in resource:
            assert actions == QUERY, resource


def test_the_psp_workers_back_off_on_their_own_queue_and_dead_letter_to_their_own_dlq(
    synthesized: Synthesized,
) -> None:
    grants = _grants(synthesized)
    for role, queue in (
        ("PayInExecutorRole", "PayInExecutorQueue"),
        ("PayoutsPayoutExecutorRole", "PayoutsPayoutQueue"),
        ("RefundsRefundExecutorRole", "RefundsRefundQueue"),
    ):
        # ChangeMessageVisibility on the worker's own queue only
        visibility = {r for r, actions in grants[role].items() if "sqs:ChangeMessageVisibility" in actions}
        assert visibility == {queue}, role
        # SendMessage to its own dead-letter queue, and to no other function's
        dead_letter_queues = {
            r for r, actions in grants[role].items() if r.endswith("Dlq") and "sqs:SendMessage" in actions
        }
        assert dead_letter_queues == {f"{queue}Dlq"}, role
        # The circuit's item: read and conditional put, nothing else
        assert grants[role]["PayInPspCircuitTable"] == ITEM_READ_PUT
    writers = {role for role, role_grants in grants.items() if "PayInPspCircuitTable" in role_grants}
    assert writers == {"PayInExecutorRole", "PayoutsPayoutExecutorRole", "RefundsRefundExecutorRole"}


@pytest.mark.parametrize(
    ("role", "queue"),
    [("HoldsWalletHoldsRole", "HoldsWalletHoldsQueue"), ("RefundsWalletRefundsRole", "RefundsWalletRefundsQueue")],
)
def test_the_wallet_workers_that_wait_back_off_on_their_own_queue_and_dead_letter_to_their_own_dlq(
    synthesized: Synthesized, role: str, queue: str
) -> None:
    grants = _grants(synthesized)
    # ChangeMessageVisibility on the worker's own queue only
    visibility = {r for r, actions in grants[role].items() if "sqs:ChangeMessageVisibility" in actions}
    assert visibility == {queue}
    # SendMessage to its own dead-letter queue, and to no other queue's
    dlq = f"{queue}Dlq"
    assert {r for r, actions in grants[role].items() if r.endswith("Dlq") and "sqs:SendMessage" in actions} == {dlq}
    # And no other role may send to that dead-letter queue (SQS's own redrive needs no grant)
    assert {r for r, role_grants in grants.items() if "sqs:SendMessage" in role_grants.get(dlq, set())} == {role}


def test_only_the_order_deciders_may_send_to_the_wallet_queue(synthesized: Synthesized) -> None:
    # The wallet credits what arrives on its queue: only the functions that decide an order SUCCEEDED send there
    # (the executor, and the webhook receiver and recovery sweep that settle orders the executor left open).
    senders = {
        role
        for role, grants in _grants(synthesized).items()
        if "sqs:SendMessage" in grants.get("PayInWalletQueue", set())
    }
    assert senders == {"PayInExecutorRole", "PspWebhooksFunctionRole", "RecoveryFunctionRole"}
    # And no queue policy lets anyone else (a service, another account) send to it
    wallet_queue = by_base_name(synthesized.template, "AWS::SQS::Queue")["PayInWalletQueue"][0]
    for policy in synthesized.resources("AWS::SQS::QueuePolicy").values():
        props = policy["Properties"]
        if {"Ref": wallet_queue} not in props["Queues"]:
            continue
        assert [s for s in props["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"] == []


def test_only_the_delivery_decrypts_webhook_secrets_and_only_the_api_seals_them(synthesized: Synthesized) -> None:
    grants = _grants(synthesized)
    holders = {role: g["EventsWebhookSecretsKey"] for role, g in grants.items() if "EventsWebhookSecretsKey" in g}
    assert holders == {"EventsDeliveryRole": {"kms:Decrypt"}, "EventsEventsApiRole": {"kms:Encrypt", "kms:Decrypt"}}


def test_only_the_bus_rule_may_send_to_the_fanout_queue(synthesized: Synthesized) -> None:
    # The fan-out delivers whatever reaches its queue, signed: only our rule's events may (and no role's).
    queues = by_base_name(synthesized.template, "AWS::SQS::Queue")
    rule = by_base_name(synthesized.template, "AWS::Events::Rule")["EventsToWebhooks"][0]
    for name in ("EventsFanoutQueue", "EventsFanoutQueueDlq"):
        policies = [
            p["Properties"]["PolicyDocument"]["Statement"]
            for p in synthesized.resources("AWS::SQS::QueuePolicy").values()
            if {"Ref": queues[name][0]} in p["Properties"]["Queues"]
        ]
        allows = [s for statements in policies for s in statements if s["Effect"] == "Allow"]
        assert allows, name
        for statement in allows:
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}, name
            assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule, "Arn"]}}}, name
    senders = {r for r, g in _grants(synthesized).items() if "sqs:SendMessage" in g.get("EventsFanoutQueue", set())}
    assert senders == set()


def _key_policy_principals(resource: dict[str, Any]) -> list[Any]:
    return [s.get("Principal") for s in resource["Properties"]["KeyPolicy"]["Statement"]]


def test_key_policies_name_only_the_account_and_the_services_that_need_them(synthesized: Synthesized) -> None:
    keys = by_base_name(synthesized.template, "AWS::KMS::Key")
    field_keys = {"EventsWebhookSecretsKey", "SellersPayoutAccountsKey"}
    assert set(keys) == KMS_KEYS | field_keys
    data_principals = _key_policy_principals(keys["EncryptionDataKey"][1])
    messages_principals = _key_policy_principals(keys["EncryptionMessagesKey"][1])
    logs_principals = _key_policy_principals(keys["EncryptionLogsKey"][1])
    # The account's IAM policies decide (the grants above); no service principal on the Data key.
    assert all("AWS" in p and "Service" not in p for p in data_principals)
    # S3 may encrypt notifications into the settlement-file queue with the Messages key, CloudWatch its
    # alarms into the alarm topic, EventBridge the events bus's rules' messages into their queues, nothing else.
    services = {p["Service"] for p in messages_principals if "Service" in p}
    assert services == {"s3.amazonaws.com", "cloudwatch.amazonaws.com", "events.amazonaws.com"}
    (events_statement,) = [
        s
        for s in keys["EncryptionMessagesKey"][1]["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal", {}).get("Service") == "events.amazonaws.com"
    ]
    assert sorted(events_statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert set(events_statement["Condition"]) == {"StringEquals", "ArnLike"}
    assert "aws:SourceAccount" in events_statement["Condition"]["StringEquals"]
    # The keys of sealed fields (webhook secrets, bank numbers): no service principal; the account's IAM
    # policies (the grants above) decide.
    for field_key in field_keys:
        assert all("Service" not in p for p in _key_policy_principals(keys[field_key][1])), field_key
    # CloudWatch Logs of this region may use the Logs key (for this account's log groups: test_data_protection).
    assert {p["Service"] for p in logs_principals if "Service" in p} == {f"logs.{REGION}.amazonaws.com"}


def test_only_the_sellers_api_seals_bank_numbers_and_only_the_payout_executor_opens_them(
    synthesized: Synthesized,
) -> None:
    grants = _grants(synthesized)
    users = {role: actions for role, roles in grants.items() if (actions := roles.get("SellersPayoutAccountsKey"))}
    assert users == {"SellersSellersApiRole": {"kms:Encrypt"}, "PayoutsPayoutExecutorRole": {"kms:Decrypt"}}


def _own_grants(grants: dict[str, dict[str, set[str]]], role: str) -> dict[str, set[str]]:
    """A role's grants without those every function role has (its log group, X-Ray, the stack's keys)."""
    own_logs = role.removesuffix("Role") + "Logs"
    return {r: a for r, a in grants[role].items() if r not in KMS_KEYS and r not in ("*", own_logs)}


def test_the_holds_worker_and_sweep_hold_exactly_what_releasing_a_hold_needs(synthesized: Synthesized) -> None:
    grants = _grants(synthesized)
    # The worker: the hold's read and its release transaction (Update items only), the journal to the ledger,
    # and its own failed releases: backoff on its queue, or its dead-letter queue
    assert _own_grants(grants, "HoldsWalletHoldsRole") == {
        "PayInWalletTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "HoldsWalletHoldsQueue": SQS_CONSUME,
        "HoldsWalletHoldsQueueDlq": SQS_SEND,
        "PayInLedgerPostingsQueue": SQS_SEND,
    }
    # The sweep: Query on the due-hold index by name and on nothing else of the table, the releases it asks
    # for, and its failed invocations to the schedules' queue
    assert _own_grants(grants, "HoldsHoldSweepRole") == {
        "PayInWalletTable/index/by_hold_due": QUERY,
        "HoldsWalletHoldsQueue": SQS_SEND,
        "PayoutsScheduleFailuresQueue": {"sqs:SendMessage"},
    }
    # The payments API: the fulfilled order by key (no Query, no index), and the release request
    payment_api = _own_grants(grants, "PayInPaymentApiRole")
    assert payment_api["PayInExecutorTable"] == {"dynamodb:GetItem"}
    assert "PayInExecutorTable/index/*" not in payment_api
    assert payment_api["HoldsWalletHoldsQueue"] == SQS_SEND
    # The wallet's refund worker reads the hold its refund takes from (GetItem of the charge marker)
    assert "dynamodb:GetItem" in grants["RefundsWalletRefundsRole"]["PayInWalletTable"]


def test_only_fulfilment_and_the_sweep_may_ask_for_a_hold_release(synthesized: Synthesized) -> None:
    # The holds worker moves money from pending to available for what arrives on its queue.
    senders = {
        role
        for role, grants in _grants(synthesized).items()
        if "sqs:SendMessage" in grants.get("HoldsWalletHoldsQueue", set())
    }
    assert senders == {"PayInPaymentApiRole", "HoldsHoldSweepRole"}
    holds_queue = by_base_name(synthesized.template, "AWS::SQS::Queue")["HoldsWalletHoldsQueue"][0]
    for policy in synthesized.resources("AWS::SQS::QueuePolicy").values():
        props = policy["Properties"]
        if {"Ref": holds_queue} in props["Queues"]:
            assert [s for s in props["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"] == []
