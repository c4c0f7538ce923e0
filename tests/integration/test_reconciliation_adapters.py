"""The reconciliation function in moto with the template's tables, bucket and queues and its own environment:
S3 event in, run record, reports, review messages and ledger postings out; redelivery changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from functions.common.decided_index import decided_shard
from functions.reconciliation import handler as reconciliation
from functions.reconciliation.messages import FileQueueMessage, FinalizeRun, MapFailed
from functions.reconciliation.models import Claim, ObjectRef, Run
from functions.reconciliation.store import DynamoClaimStore
from local_stack.deploy import LocalCloud
from tests.integration.conftest import context, sqs_event
from tests.support.settlement_files import HEADER, with_summary

HANDLER = "functions.reconciliation.handler.handler"
DEADLINE_HANDLER = "functions.reconciliation.handler.deadline_handler"


def _name(cloud: LocalCloud, resource_type: str, prefix: str) -> str:
    return next(ref for logical_id, ref in cloud.names_of(resource_type).items() if logical_id.startswith(prefix))


def _queue(cloud: LocalCloud, prefix: str) -> str:
    return next(
        r.ref
        for r in cloud.physical.values()
        if r.type == "AWS::SQS::Queue" and r.logical_id.startswith(prefix) and "Dlq" not in r.logical_id
    )


def _drain(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    bodies: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def _function_env(use_function_env: Callable[[str], None]) -> None:
    """This process as the reconciliation function, its ports built afresh from that environment."""
    use_function_env(HANDLER)
    reconciliation._settings.cache_clear()
    reconciliation._ports.cache_clear()


def _s3_event(bucket: str, key: str, etag: str, version: str) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-05-02T00:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key.replace(" ", "+"), "size": 1, "eTag": etag, "versionId": version},
        },
    }
    return json.dumps({"Records": [record]})


def test_a_settlement_file_event_makes_one_run_its_reports_reviews_and_postings(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    _function_env(use_function_env)
    executor = boto3.resource("dynamodb").Table(_name(cloud, "AWS::DynamoDB::Table", "PayInExecutorTable"))
    for po, amount, decided in (("po_1", 1000, "12:00:01"), ("po_2", 2000, "12:00:02"), ("po_3", 3000, "12:00:03")):
        executor.put_item(
            Item={
                "payment_order_id": po,
                "status": "SUCCEEDED",
                "amount": amount,
                "currency": "USD",
                "psp_reference": f"ch_{po}",
                "seller_id": "s",
                "decided_at": f"2026-05-01T{decided}.000000+00:00",
                "decided_shard": decided_shard(po, f"2026-05-01T{decided}.000000+00:00"),  # as the executor writes
            }
        )
    text = with_summary(
        HEADER
        + "ch_po_1,po_1,charge,1000,USD,59,941,succeeded,2026-05-01T12:00:00.900Z,2026-05-03\n"
        + "ch_po_3,po_3,charge,3100,USD,120,2980,succeeded,2026-05-01T12:00:02.900Z,2026-05-03\n"
    )
    bucket = _name(cloud, "AWS::S3::Bucket", "SettlementBucket")
    key = "settlements/2026-05-01/psp settlement.csv"
    put = boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=text.encode())
    event = sqs_event(_s3_event(bucket, key, put["ETag"], put["VersionId"]), json.dumps({"Event": "s3:TestEvent"}))

    # When the notification is handled, twice (S3 notifications are at-least-once)
    assert reconciliation.handler(event, context()) == {"batchItemFailures": []}
    assert reconciliation.handler(event, context()) == {"batchItemFailures": []}

    # Then there is one run: po_1 matched, po_3's amount differs, po_2 is missing from the file
    runs = reconciliation._ports().runs.list_runs(10)
    assert len(runs) == 1
    run = runs[0]
    assert (run.status, run.rows, run.matched, run.source.key) == ("COMPLETED", 2, 1, key)
    assert (run.breaks["amount_mismatch"], run.breaks["missing_external"]) == (1, 1)
    report = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=run.report.key)["Body"].read())  # type: ignore[union-attr]
    assert report["run_id"] == run.run_id
    # And one settlement journal (the chunk's one matched row, po_1) reached the ledger's queue, and two
    # review items the review queue
    postings = _drain(_queue(cloud, "PayInLedgerPostingsQueue"))
    assert [(p["kind"], p["business_id"], p["reference"]) for p in postings] == [
        ("settlement", f"{run.run_id}:2:USD", run.run_id)
    ]
    assert [(line["account"], line["direction"], line["amount"]) for line in postings[0]["lines"]] == [
        ("bank_cash", "debit", 941),
        ("psp_fee_expense", "debit", 59),
        ("psp_receivable", "credit", 1000),
    ]
    review = _drain(_queue(cloud, "SettlementReviewQueue"))
    assert sorted(r["break_class"] for r in review) == ["amount_mismatch", "missing_external"]


def test_a_binary_file_is_a_failed_run_not_a_retry(cloud: LocalCloud, use_function_env: Callable[[str], None]) -> None:
    _function_env(use_function_env)
    bucket = _name(cloud, "AWS::S3::Bucket", "SettlementBucket")
    put = boto3.client("s3").put_object(Bucket=bucket, Key="settlements/x.bin", Body=b"\xff\xfe\x00\x01garbage")
    event = sqs_event(_s3_event(bucket, "settlements/x.bin", put["ETag"], put["VersionId"]))

    assert reconciliation.handler(event, context()) == {"batchItemFailures": []}

    (run,) = reconciliation._ports().runs.list_runs(10)
    assert run.status == "FAILED"
    assert run.error is not None and run.error.startswith("not a settlement file: the header is not")


def test_the_claim_store_escalates_a_temporary_break_once_and_keeps_it_under_the_run(cloud: LocalCloud) -> None:
    claims = DynamoClaimStore(_name(cloud, "AWS::DynamoDB::Table", "SettlementSettlementsTable"))
    late = Claim("po_late", "awaiting", "rr_1", decided_at="2026-05-01T12:01:00+00:00")
    claims.open_break(late)
    claims.open_break(late._replace(state="missing"))  # an order's claim is written once
    before = datetime(2026, 5, 2, tzinfo=UTC)
    assert list(claims.awaiting_before(before)) == [late]

    assert claims.escalate(late, "rr_2") is True
    assert claims.escalate(late, "rr_2") is False  # no longer awaiting
    assert claims.escalate(late, "rr_3") is False

    escalated = late._replace(state="missing")
    assert list(claims.awaiting_before(before)) == []
    assert list(claims.escalated_by("rr_2")) == [escalated]
    assert list(claims.escalated_by("rr_3")) == []
    assert claims.claims(["po_late"]) == {"po_late": escalated}


def _file_queue_messages(cloud: LocalCloud) -> dict[str, dict[str, Any]]:
    """The messages the large-file state machine sends to the file queue, by state name, as deployed."""
    arn = next(arn for logical_id, arn in cloud.state_machines.items() if logical_id.startswith("SettlementLarge"))
    definition = json.loads(boto3.client("stepfunctions").describe_state_machine(stateMachineArn=arn)["definition"])
    file_queue = _queue(cloud, "SettlementFileQueue")
    found: dict[str, dict[str, Any]] = {}

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            parameters = state.get("Parameters", {})
            if parameters.get("QueueUrl") == file_queue:
                found[name] = parameters["MessageBody"]
            walk(state.get("ItemProcessor", {}).get("States", {}))

    walk(definition["States"])
    return found


def _rendered(body: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """A message body as Step Functions sends it: each `key.$` replaced by the state's value at `$.<name>`."""
    return {
        key.removesuffix(".$"): state[value.removeprefix("$.")] if key.endswith(".$") else value
        for key, value in body.items()
    }


def test_the_state_machines_file_queue_messages_are_the_handlers_typed_messages(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    # Given the deployed state machine's two messages to the file queue, as it renders them
    bodies = _file_queue_messages(cloud)
    assert sorted(bodies) == ["Finalize", "ReportMapFailure"]
    error = {"Error": "States.ItemReaderFailed", "Cause": "the CSV could not be read"}
    finalize = _rendered(bodies["Finalize"], {"run_id": "rr_large"})
    failed = _rendered(bodies["ReportMapFailure"], {"run_id": "rr_large", "error": error})

    # Then each is its own kind, by its type
    assert FileQueueMessage.model_validate(finalize).root == FinalizeRun(type="finalize", run_id="rr_large")
    assert FileQueueMessage.model_validate(failed).root == MapFailed(type="map_failed", run_id="rr_large", error=error)

    # And the failure message fails the running distributed run with its cause; a repeat changes nothing
    _function_env(use_function_env)
    bucket = _name(cloud, "AWS::S3::Bucket", "SettlementBucket")
    running = Run(
        run_id="rr_large",
        source=ObjectRef(bucket=bucket, key="settlements/large.csv"),
        mode="distributed",
        created_at="2026-05-02T00:00:00+00:00",
    )
    reconciliation._ports().runs.put(running)
    event = sqs_event(json.dumps(failed))
    assert reconciliation.handler(event, context()) == {"batchItemFailures": []}
    run = reconciliation._ports().runs.get("rr_large")
    assert run is not None
    assert (run.status, run.error) == ("FAILED", f"the Distributed Map failed: {json.dumps(error)}")
    assert reconciliation.handler(event, context()) == {"batchItemFailures": []}
    assert reconciliation._ports().runs.get("rr_large") == run


def test_a_message_of_no_known_kind_fails_only_its_own_record(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    _function_env(use_function_env)
    event = sqs_event(
        json.dumps({"finalize": {"run_id": "rr_1"}}),  # the shape before messages had a type
        json.dumps({"type": "finalise", "run_id": "rr_1"}),
        json.dumps({"Event": "s3:TestEvent"}),
    )

    assert reconciliation.handler(event, context()) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]
    }


def test_payout_rows_match_the_payouts_table_and_a_paid_payout_the_file_lacks_is_missing(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    # Given an order and three paid payouts (as the saga marks them: status PAID, updated_at); the PSP's file
    # of the order, and the payout provider's file of two of the payouts
    _function_env(use_function_env)
    executor = boto3.resource("dynamodb").Table(_name(cloud, "AWS::DynamoDB::Table", "PayInExecutorTable"))
    decided = "2026-06-01T12:00:01.000000+00:00"
    executor.put_item(
        Item={
            "payment_order_id": "po_p1",
            "status": "SUCCEEDED",
            "amount": 5000,
            "currency": "USD",
            "psp_reference": "ch_po_p1",
            "seller_id": "s",
            "decided_at": decided,
            "decided_shard": decided_shard("po_p1", decided),
        }
    )
    payouts = boto3.resource("dynamodb").Table(_name(cloud, "AWS::DynamoDB::Table", "PayoutsPayoutsTable"))
    for payout_id, amount, paid in (
        ("pay_in_file", 3000, "12:00:02.000Z"),
        ("pay_not_in_file", 700, "12:00:03.000Z"),
        ("pay_also_in_file", 400, "12:00:04.000Z"),
    ):
        payouts.put_item(
            Item={
                "payout_id": payout_id,
                "seller_id": "s",
                "amount": amount,
                "currency": "USD",
                "status": "PAID",
                "psp_reference": f"pmt_{payout_id}",  # the payout provider's payment id
                "created_at": "2026-06-01T11:00:00.000Z",
                "updated_at": f"2026-06-01T{paid}",
            }
        )
    psp_text = with_summary(
        HEADER + "ch_po_p1,po_p1,charge,5000,USD,175,4825,succeeded,2026-06-01T12:00:00.900Z,2026-06-03\n",
        period="2026-06-01",
    )
    provider_text = with_summary(
        HEADER
        + "pmt_pay_in_file,pay_in_file,payout,3000,USD,0,3000,paid,2026-06-01T12:00:02.500Z,2026-06-03\n"
        + "pmt_pay_also_in_file,pay_also_in_file,payout,400,USD,0,400,paid,2026-06-01T12:00:04.500Z,2026-06-03\n",
        period="2026-06-01",
    )
    bucket = _name(cloud, "AWS::S3::Bucket", "SettlementBucket")
    psp_key = "settlements/2026-06-01/psp-settlement-2026-06-01.csv"
    provider_key = "settlements/2026-06-01/payout-provider/payouts-2026-06-01.csv"
    _drain(_queue(cloud, "PayInLedgerPostingsQueue"))

    # When the files are reconciled
    for key, text in ((psp_key, psp_text), (provider_key, provider_text)):
        put = boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=text.encode())
        event = sqs_event(_s3_event(bucket, key, put["ETag"], put["VersionId"]))
        assert reconciliation.handler(event, context()) == {"batchItemFailures": []}

    # Then every row matches; the PSP's file is not blamed for the payouts, and the paid payout the payout
    # provider's file lacks is a missing_external break of that file
    runs = {r.source.key: r for r in reconciliation._ports().runs.list_runs(10)}
    psp_run, provider_run = runs[psp_key], runs[provider_key]
    assert (psp_run.status, psp_run.day, psp_run.sender, psp_run.rows, psp_run.matched) == (
        "COMPLETED",
        "2026-06-01",
        "psp",
        1,
        1,
    )
    assert (provider_run.status, provider_run.day, provider_run.sender, provider_run.rows, provider_run.matched) == (
        "COMPLETED",
        "2026-06-01",
        "payout_provider",
        2,
        2,
    )
    assert {k: v for k, v in psp_run.breaks.items() if v} == {}
    assert {k: v for k, v in provider_run.breaks.items() if v} == {"missing_external": 1}
    assert (psp_run.settled_amounts, psp_run.paid_out) == ({"USD": 5000}, {})
    assert (provider_run.settled_amounts, provider_run.paid_out) == ({}, {"USD": 3400})
    report = provider_run.breaks_report
    assert report is not None
    breaks = boto3.client("s3").get_object(Bucket=bucket, Key=report.key)["Body"].read().decode()
    assert breaks.splitlines()[1:] == [
        "missing_external,false,,pmt_pay_not_in_file,pay_not_in_file,"
        '"payout row of payout 700 USD decided 2026-06-01T12:00:03.000Z, not in the file"'
    ]
    # And the payouts' claims are their own (payout#<id>), and the cash out went to the ledger
    claims = DynamoClaimStore(_name(cloud, "AWS::DynamoDB::Table", "SettlementSettlementsTable"))
    stored = claims.claims(["payout#pay_in_file", "payout#pay_also_in_file", "payout#pay_not_in_file"])
    assert {k: (c.state, c.run_id) for k, c in stored.items()} == {
        "payout#pay_in_file": ("settled", provider_run.run_id),
        "payout#pay_also_in_file": ("settled", provider_run.run_id),
        "payout#pay_not_in_file": ("missing", provider_run.run_id),
    }
    postings = _drain(_queue(cloud, "PayInLedgerPostingsQueue"))
    assert [(p["kind"], p["business_id"]) for p in postings] == [
        ("settlement", f"{psp_run.run_id}:2:USD"),
        ("settlement_cash_out", f"{provider_run.run_id}:2:USD"),
    ]
    assert [(line["account"], line["direction"], line["amount"]) for line in postings[1]["lines"]] == [
        ("psp_receivable", "debit", 3400),
        ("bank_cash", "credit", 3400),
    ]


def _file_missing_metrics(out: str) -> list[Any]:
    """Each SettlementFileMissing value the handler published (EMF on stdout). Its namespace and service
    dimension come from the function's environment: tests/infra/test_money_alarms.py checks them against the
    alarm."""
    emitted = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    return [m["SettlementFileMissing"] for m in emitted if "SettlementFileMissing" in m]


def test_the_deadline_check_marks_a_day_missing_until_its_file_arrives(
    cloud: LocalCloud, use_function_env: Callable[[str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    use_function_env(DEADLINE_HANDLER)
    reconciliation._deadline_settings.cache_clear()
    capsys.readouterr()
    runs = boto3.resource("dynamodb").Table(_name(cloud, "AWS::DynamoDB::Table", "SettlementRunsTable"))
    scheduled = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}

    # When the check runs at 07:15 on 2031-01-02 and nothing has arrived for 2031-01-01
    result = reconciliation.deadline_handler({**scheduled, "time": "2031-01-02T07:15:00Z"}, context())

    # Then the day is MISSING
    assert result == {"day": "2031-01-01", "missing": True, "run_id": "missing_2031-01-01"}
    item = runs.get_item(Key={"run_id": "missing_2031-01-01"})["Item"]
    assert (item["status"], item["reason"], item["day"]) == ("MISSING", "file_missing", "2031-01-01")
    # and the alarmed metric is 1
    assert _file_missing_metrics(capsys.readouterr().out) == [[1.0]]

    # When only the payout provider's file arrives (a day may have no payouts: the PSP's file is the one
    # due), the day is still MISSING
    bucket = _name(cloud, "AWS::S3::Bucket", "SettlementBucket")
    boto3.client("s3").put_object(Bucket=bucket, Key="settlements/2031-01-01/payout-provider/late.csv", Body=b"x")
    still = reconciliation.deadline_handler({**scheduled, "time": "2031-01-02T07:45:00Z"}, context())
    assert still == {"day": "2031-01-01", "missing": True, "run_id": "missing_2031-01-01"}
    assert _file_missing_metrics(capsys.readouterr().out) == [[1.0]]

    # When the PSP's file arrives and the check runs again, the record is gone
    boto3.client("s3").put_object(Bucket=bucket, Key="settlements/2031-01-01/late.csv", Body=b"x")
    again = reconciliation.deadline_handler({**scheduled, "time": "2031-01-02T08:15:00Z"}, context())
    assert again == {"day": "2031-01-01", "missing": False, "run_id": None}
    assert "Item" not in runs.get_item(Key={"run_id": "missing_2031-01-01"})
    assert _file_missing_metrics(capsys.readouterr().out) == [[0.0]]
