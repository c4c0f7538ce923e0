"""Money data at rest: point-in-time recovery, deletion protection and RETAIN on money tables; customer-
managed KMS keys on tables, queues, the settlement bucket, the PSP secrets, function environments, log
groups and the alarm topic; the bucket hardened; TTL only where records are meant to expire (idempotency,
outbox)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from local_stack.template import ACCOUNT_ID, REGION
from tests.conftest import Synthesized
from tests.infra.template_facts import as_list, base_name, by_base_name, references

# Records that are meant to expire: Powertools idempotency records, PSP webhook event ids (dedupe
# window), the PSP circuit breaker's shared state, and an outbox if one is added.
EXPIRING_TABLES = ("Idempotency", "PspWebhooksEvents", "PspCircuit", "Outbox")


def _key(synthesized: Synthesized, purpose: str) -> str:
    (logical_id,) = (k for k in synthesized.resources("AWS::KMS::Key") if base_name(k) == f"Encryption{purpose}Key")
    return logical_id


def _is_expiring(logical_id: str) -> bool:
    return any(word in logical_id for word in EXPIRING_TABLES)


def test_money_tables_have_pitr_deletion_protection_and_are_retained(synthesized: Synthesized) -> None:
    money_tables = {k: v for k, v in synthesized.resources("AWS::DynamoDB::Table").items() if not _is_expiring(k)}
    assert len(money_tables) >= 6
    for logical_id, table in money_tables.items():
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, logical_id
        assert props["DeletionProtectionEnabled"] is True, logical_id
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain", logical_id


def test_every_table_is_encrypted_with_the_data_key(synthesized: Synthesized) -> None:
    data_key = _key(synthesized, "Data")
    for logical_id, table in synthesized.resources("AWS::DynamoDB::Table").items():
        sse = table["Properties"]["SSESpecification"]
        assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS", logical_id
        assert references(sse["KMSMasterKeyId"]) == [data_key], logical_id


def test_ttl_only_on_idempotency_and_outbox_records(synthesized: Synthesized) -> None:
    with_ttl = {
        base_name(k): v["Properties"]["TimeToLiveSpecification"]
        for k, v in synthesized.resources("AWS::DynamoDB::Table").items()
        if "TimeToLiveSpecification" in v["Properties"]
    }
    assert set(with_ttl) <= {"PayInIdempotencyTable", "PspWebhooksEventsTable", "PayInPspCircuitTable"}
    assert with_ttl["PayInIdempotencyTable"] == {"AttributeName": "expiration", "Enabled": True}
    assert with_ttl["PayInPspCircuitTable"] == {"AttributeName": "expires_at", "Enabled": True}
    assert all(_is_expiring(name) for name in with_ttl)


def test_every_queue_is_encrypted_with_the_messages_key(synthesized: Synthesized) -> None:
    messages_key = _key(synthesized, "Messages")
    queues = synthesized.resources("AWS::SQS::Queue")
    assert len(queues) >= 14
    for logical_id, queue in queues.items():
        props = queue["Properties"]
        assert references(props["KmsMasterKeyId"]) == [messages_key], logical_id
        assert props["KmsDataKeyReusePeriodSeconds"] == 300, logical_id
        assert "SqsManagedSseEnabled" not in props, logical_id


def test_every_queue_refuses_plain_http(synthesized: Synthesized) -> None:
    # SQS keeps one policy per queue: a queue named by two QueuePolicy resources keeps the last one written.
    named = Counter(
        queue
        for policy in synthesized.resources("AWS::SQS::QueuePolicy").values()
        for queue in references(policy["Properties"]["Queues"])
    )
    assert dict(named) == dict.fromkeys(synthesized.resources("AWS::SQS::Queue"), 1)
    for logical_id, policy in synthesized.resources("AWS::SQS::QueuePolicy").items():
        props = policy["Properties"]
        tls_only = [s for s in props["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        # One deny, on every queue the policy names and only those, for every principal and every SQS action.
        (deny,) = tls_only
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, logical_id
        assert deny["Principal"] in ({"AWS": "*"}, "*"), logical_id
        assert deny["Action"] == "sqs:*", logical_id
        assert sorted(r["Fn::GetAtt"] for r in as_list(deny["Resource"])) == sorted(
            [queue, "Arn"] for queue in references(props["Queues"])
        ), logical_id


def test_keys_rotate_and_are_retained(synthesized: Synthesized) -> None:
    keys = synthesized.resources("AWS::KMS::Key")
    assert {base_name(k) for k in keys} == {
        "EncryptionDataKey",
        "EncryptionMessagesKey",
        "EncryptionLogsKey",
        "EventsWebhookSecretsKey",
        "SellersPayoutAccountsKey",
    }
    for logical_id, key in keys.items():
        props = key["Properties"]
        assert props["EnableKeyRotation"] is True, logical_id
        assert props["RotationPeriodInDays"] == 365, logical_id
        assert props["PendingWindowInDays"] == 30, logical_id
        assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain", logical_id
    aliases = sorted(a["Properties"]["AliasName"] for a in synthesized.resources("AWS::KMS::Alias").values())
    assert aliases == [
        "alias/payments/dev/data",
        "alias/payments/dev/logs",
        "alias/payments/dev/messages",
        "alias/payments/dev/payout-accounts",
        "alias/payments/dev/webhook-secrets",
    ]


def _buckets(synthesized: Synthesized) -> dict[str, tuple[str, dict[str, Any]]]:
    return by_base_name(synthesized.template, "AWS::S3::Bucket")


def test_settlement_bucket_is_kms_encrypted_private_versioned_and_logged(synthesized: Synthesized) -> None:
    buckets = _buckets(synthesized)
    _, bucket = buckets["SettlementBucket"]
    access_logs_id, _ = buckets["SettlementAccessLogs"]
    props = bucket["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert references(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == [_key(synthesized, "Data")]
    assert rule["BucketKeyEnabled"] is True
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": access_logs_id},
        "LogFilePrefix": "settlement/",
    }
    assert bucket["DeletionPolicy"] == "Retain"


def test_buckets_block_public_access_and_refuse_plain_http(synthesized: Synthesized) -> None:
    buckets = _buckets(synthesized)
    assert set(buckets) == {"SettlementBucket", "SettlementAccessLogs"}
    tls_only = set()
    for policy in synthesized.resources("AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}:
                tls_only.update(references(policy["Properties"]["Bucket"]))
    for logical_id, bucket in buckets.values():
        assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert logical_id in tls_only
    # Server access logs can only be delivered to an SSE-S3 bucket.
    _, access_logs = buckets["SettlementAccessLogs"]
    (rule,) = access_logs["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert access_logs["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_the_psp_api_key_is_a_kms_encrypted_secret_given_to_the_executor_by_arn(synthesized: Synthesized) -> None:
    secrets = by_base_name(synthesized.template, "AWS::SecretsManager::Secret")
    secret_id, secret = secrets["EncryptionPspApiKey"]
    assert references(secret["Properties"]["KmsKeyId"]) == [_key(synthesized, "Data")]
    assert secret["DeletionPolicy"] == "Retain"
    functions = by_base_name(synthesized.template, "AWS::Lambda::Function")
    (_, executor) = functions["PayInExecutorFunction"]
    variables = executor["Properties"]["Environment"]["Variables"]
    assert variables["PSP_API_KEY_SECRET_ARN"] == {"Ref": secret_id}
    # Every function that calls the PSP reads the one key, by the same reference; no other function names it.
    callers = {
        name
        for name, (_, function) in functions.items()
        if "PSP_API_KEY_SECRET_ARN" in function["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert callers == {
        "PayInExecutorFunction",
        "RecoveryFunction",
        "RefundSweepFunction",
        "AuditorFunction",
        "RefundsRefundExecutorFunction",
    }
    for name in callers:
        assert functions[name][1]["Properties"]["Environment"]["Variables"]["PSP_API_KEY_SECRET_ARN"] == {
            "Ref": secret_id
        }, name
    # Operators find it in the stack outputs; the value itself is never in the template or the environment.
    assert synthesized.template["Outputs"]["PspApiKeySecretArn"]["Value"] == {"Ref": secret_id}
    assert "SecretString" not in secret["Properties"]
    assert not any("sk_" in str(v) for v in variables.values())


def test_the_payout_provider_has_its_own_key_and_signing_secret(synthesized: Synthesized) -> None:
    secrets = by_base_name(synthesized.template, "AWS::SecretsManager::Secret")
    key_id, key = secrets["PayoutProviderApiKey"]
    signing_id, signing = secrets["PayoutProviderSigningSecret"]
    for secret in (key, signing):
        assert references(secret["Properties"]["KmsKeyId"]) == [_key(synthesized, "Data")]
        assert secret["DeletionPolicy"] == "Retain"
        assert "SecretString" not in secret["Properties"]
    functions = by_base_name(synthesized.template, "AWS::Lambda::Function")

    def named_by(variable: str) -> dict[str, Any]:
        return {
            name: function["Properties"]["Environment"]["Variables"][variable]
            for name, (_, function) in functions.items()
            if variable in function["Properties"].get("Environment", {}).get("Variables", {})
        }

    # The executor sends the provider's key (never the PSP's); only the provider's receiver checks its signatures
    assert named_by("PAYOUT_PROVIDER_API_KEY_SECRET_ARN") == {"PayoutsPayoutExecutorFunction": {"Ref": key_id}}
    assert named_by("PAYOUT_PROVIDER_WEBHOOK_SECRET_ARN") == {"PayoutProviderWebhooksFunction": {"Ref": signing_id}}
    assert "PayoutsPayoutExecutorFunction" not in named_by("PSP_API_KEY_SECRET_ARN")
    outputs = synthesized.template["Outputs"]
    assert outputs["PayoutProviderApiKeySecretArn"]["Value"] == {"Ref": key_id}
    assert outputs["PayoutProviderSigningSecretArn"]["Value"] == {"Ref": signing_id}


def test_every_log_group_is_encrypted_with_the_logs_key(synthesized: Synthesized) -> None:
    # Logs carry payment and seller ids: function logs, the API's access log, state machine logs.
    logs_key = _key(synthesized, "Logs")
    log_groups = synthesized.resources("AWS::Logs::LogGroup")
    assert len(log_groups) >= 20
    for logical_id, group in log_groups.items():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [logs_key, "Arn"]}, logical_id


def test_cloudwatch_logs_may_use_the_logs_key_for_this_accounts_log_groups_only(synthesized: Synthesized) -> None:
    (_, key) = by_base_name(synthesized.template, "AWS::KMS::Key")["EncryptionLogsKey"]
    (statement,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if "Service" in s["Principal"]]
    # The regional service principal, for this (local, concrete) region
    assert statement["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    assert statement["Effect"] == "Allow" and statement["Resource"] == "*"
    assert set(statement["Action"]) == {
        "kms:Encrypt*",
        "kms:Decrypt*",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:Describe*",
    }
    # Only in the encryption context of this account's log groups in this region
    condition = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert condition == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":logs:{REGION}:{ACCOUNT_ID}:log-group:*"]]
    }


def test_every_function_environment_is_encrypted_with_the_data_key(synthesized: Synthesized) -> None:
    data_key = _key(synthesized, "Data")
    ours = {k: f for k, f in synthesized.resources("AWS::Lambda::Function").items() if "Environment" in f["Properties"]}
    assert len(ours) >= 17
    for logical_id, function in ours.items():
        assert function["Properties"]["KmsKeyArn"] == {"Fn::GetAtt": [data_key, "Arn"]}, logical_id


def test_the_alarm_topic_is_encrypted_with_the_messages_key_cloudwatch_may_use(synthesized: Synthesized) -> None:
    messages_key = _key(synthesized, "Messages")
    ((_, topic),) = synthesized.resources("AWS::SNS::Topic").items()
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [messages_key, "Arn"]}
    # CloudWatch alarms publish to it, so they need the key (encrypt a data key, decrypt it)
    key = synthesized.template["Resources"][messages_key]
    statements = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Principal"].get("Service")]
    cloudwatch = [s for s in statements if s["Principal"]["Service"] == "cloudwatch.amazonaws.com"]
    assert [sorted(s["Action"]) for s in cloudwatch] == [["kms:Decrypt", "kms:GenerateDataKey*"]]


def test_the_webhook_signing_secret_is_on_the_data_key_and_retained(synthesized: Synthesized) -> None:
    secrets = by_base_name(synthesized.template, "AWS::SecretsManager::Secret")
    _, secret = secrets["PspWebhooksSigningSecret"]
    assert references(secret["Properties"]["KmsKeyId"]) == [_key(synthesized, "Data")]
    assert secret["DeletionPolicy"] == secret["UpdateReplacePolicy"] == "Retain"
    # Every secret in the stack is on the Data key
    for logical_id, each in secrets.values():
        assert references(each["Properties"]["KmsKeyId"]) == [_key(synthesized, "Data")], logical_id
