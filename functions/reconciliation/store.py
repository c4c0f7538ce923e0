"""Adapters: the runs and settlements tables, the executor's orders (read only), the settlement objects in
S3 (read as a stream, never whole), the reports and the breaks report's spool, the review and
ledger-postings queues, the state machine."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import IO, Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from functions.common import decided_index
from functions.common.aws import client
from functions.common.clock import iso
from functions.common.dynamo import cancellation_codes, is_condition_failure, items, plain, table
from functions.common.events import JournalPosting
from functions.common.queues import QueuePublisher
from functions.reconciliation.models import (
    CHUNK,
    Claim,
    ClaimBatch,
    ObjectHead,
    ObjectRef,
    Order,
    Outcome,
    ReviewItem,
    Run,
)

# The settlements table's sparse index of temporary breaks still awaiting the next file.
AWAITING_INDEX = "by_awaiting"
AWAITING = "AWAITING"
ESCALATED = "ESCALATED#"  # + the run that escalated the claim
CLAIM_SK = "claim"


def _bound(moment: datetime) -> str:
    return decided_index.sort_bound(moment)


def _claim_pk(key: str) -> str:
    """order#<id> for a charge's claim; a claim key of another row type is its own (refund#<id>, ...)."""
    return key if "#" in key else f"order#{key}"


class DynamoRunStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def get(self, run_id: str) -> Run | None:
        item = table(self.table_name).get_item(Key={"run_id": run_id}, ConsistentRead=True).get("Item")
        return None if item is None else Run.model_validate(plain(item))

    def put(self, run: Run) -> None:
        table(self.table_name).put_item(Item=run.model_dump(exclude_none=True))

    def list_runs(self, limit: int) -> list[Run]:
        runs = [Run.model_validate(plain(i)) for i in items(self.table_name, "scan")]
        return sorted(runs, key=lambda r: r.created_at, reverse=True)[:limit]

    def delete(self, run_id: str) -> None:
        table(self.table_name).delete_item(Key={"run_id": run_id})


def batch_get(table_name: str, keys: list[dict[str, Any]], projection: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {"Keys": keys[start : start + 100], "ConsistentRead": True}
        if projection:
            request["ProjectionExpression"] = projection
            if "#s" in projection:
                request["ExpressionAttributeNames"] = {"#s": "status"}
        pending: dict[str, Any] = {table_name: request}
        while pending:
            response = client("dynamodb").batch_get_item(RequestItems=pending)
            items.extend(response["Responses"].get(table_name, []))
            pending = response.get("UnprocessedKeys") or {}
    return items


def attribute(item: dict[str, Any], name: str) -> str | None:
    """An attribute as a string, from the client's typed items ({"S": ...}) or the resource's plain ones."""
    value = item.get(name)
    if isinstance(value, dict):
        return str(value.get("S", value.get("N", "")))
    return None if value is None else str(value)


class DynamoOrderSource:
    """The executor's orders, read only (the reconciliation role has no write access to them)."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @staticmethod
    def _order(item: dict[str, Any]) -> Order:
        return Order(
            payment_order_id=attribute(item, "payment_order_id") or "",
            status=attribute(item, "status") or "",
            amount=int(attribute(item, "amount") or 0),
            currency=attribute(item, "currency") or "",
            psp_reference=attribute(item, "psp_reference"),
            decided_at=attribute(item, "decided_at"),
            seller_id=attribute(item, "seller_id") or "",
        )

    def orders(self, payment_order_ids: Sequence[str]) -> list[Order | None]:
        keys = [{"payment_order_id": {"S": po}} for po in payment_order_ids]
        projection = "payment_order_id, #s, amount, currency, psp_reference, decided_at, seller_id"
        by_id = {o.payment_order_id: o for o in map(self._order, batch_get(self.table_name, keys, projection))}
        return list(map(by_id.get, payment_order_ids))

    def succeeded_between(self, start: datetime, end: datetime) -> Iterator[list[Order]]:
        """From the sparse index of succeeded orders: every shard of every hour in the span."""
        between = Key(decided_index.SORT_KEY).between(decided_index.sort_bound(start), decided_index.sort_bound(end))
        page: list[Order] = []
        for shard in decided_index.shards_between(start, end):
            condition = Key(decided_index.ATTRIBUTE).eq(shard) & between
            for item in items(self.table_name, IndexName=decided_index.INDEX, KeyConditionExpression=condition):
                page.append(self._order(item))
                if len(page) == CHUNK:
                    yield page
                    page = []
        if page:
            yield page


class ClaimConflict(RuntimeError):
    """Another delivery settled one of these orders between our read and our write: retry the chunk."""


class DynamoClaimStore:
    """Settlement claims, one item per order: settled by (run, line), or an open missing_external break."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @staticmethod
    def _claim(item: dict[str, Any]) -> Claim:
        return Claim(
            payment_order_id=(attribute(item, "pk") or "").removeprefix("order#"),
            state=attribute(item, "state"),  # type: ignore[arg-type]
            run_id=attribute(item, "run_id") or "",
            line=int(attribute(item, "line") or 0),
            psp_reference=attribute(item, "psp_reference") or "",
            decided_at=attribute(item, "decided_at") or "",
        )

    @staticmethod
    def _item(claim: Claim) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": {"S": _claim_pk(claim.payment_order_id)},
            "sk": {"S": CLAIM_SK},
            "state": {"S": claim.state},
            "run_id": {"S": claim.run_id},
            "line": {"N": str(claim.line)},
            "psp_reference": {"S": claim.psp_reference},
            "decided_at": {"S": claim.decided_at},
        }
        if claim.state == "awaiting":
            item["awaiting"] = {"S": AWAITING}
        return item

    def claims(self, payment_order_ids: Sequence[str]) -> dict[str, Claim]:
        keys = [{"pk": {"S": _claim_pk(po)}, "sk": {"S": CLAIM_SK}} for po in payment_order_ids]
        return {c.payment_order_id: c for c in map(self._claim, batch_get(self.table_name, keys))}

    def settle(self, batch: ClaimBatch) -> None:
        claims = list(batch.pairs())
        for start in range(0, len(claims), 100):
            items = []
            for new, prior in claims[start : start + 100]:
                put: dict[str, Any] = {"TableName": self.table_name, "Item": self._item(new)}
                if prior is None:
                    put["ConditionExpression"] = "attribute_not_exists(pk)"
                else:
                    put["ExpressionAttributeNames"] = {"#state": "state", "#line": "line"}
                    put["ConditionExpression"] = "#state = :state AND run_id = :run AND #line = :line"
                    put["ExpressionAttributeValues"] = {
                        ":state": {"S": prior.state},
                        ":run": {"S": prior.run_id},
                        ":line": {"N": str(prior.line)},
                    }
                items.append({"Put": put})
            try:
                client("dynamodb").transact_write_items(TransactItems=items)
            except ClientError as error:
                if is_condition_failure(error):
                    raise ClaimConflict(
                        f"settlement claims changed concurrently: {cancellation_codes(error)}"
                    ) from None
                raise

    def open_break(self, claim: Claim) -> None:
        try:
            client("dynamodb").put_item(
                TableName=self.table_name, Item=self._item(claim), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise

    def awaiting_before(self, before: datetime) -> Iterator[Claim]:
        return self._indexed(Key("awaiting").eq(AWAITING) & Key("decided_at").lt(_bound(before)))

    def escalated_by(self, run_id: str) -> Iterator[Claim]:
        return self._indexed(Key("awaiting").eq(f"{ESCALATED}{run_id}"))

    def _indexed(self, condition: Any) -> Iterator[Claim]:
        """Claims from the sparse index (awaiting ones, and escalated ones under their run)."""
        return map(self._claim, items(self.table_name, IndexName=AWAITING_INDEX, KeyConditionExpression=condition))

    def escalate(self, claim: Claim, run_id: str) -> bool:
        try:
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key={"pk": {"S": _claim_pk(claim.payment_order_id)}, "sk": {"S": CLAIM_SK}},
                # out of the awaiting partition of the sparse index, into this run's escalations
                UpdateExpression="SET #state = :missing, escalated_by = :run, awaiting = :escalated",
                ConditionExpression="#state = :awaiting",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":missing": {"S": "missing"},
                    ":awaiting": {"S": "awaiting"},
                    ":run": {"S": run_id},
                    ":escalated": {"S": f"{ESCALATED}{run_id}"},
                },
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True


class DynamoOutcomeStore:
    """Per-row outcomes of a distributed run (the Map's row workers write, the finaliser folds)."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def save(self, run_id: str, outcomes: Sequence[Outcome]) -> None:
        with table(self.table_name).batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for o in outcomes:
                item: dict[str, Any] = {
                    "pk": f"run#{run_id}",
                    "sk": f"line#{o.line:09d}",
                    "line": o.line,
                    "klass": o.klass or "",
                    "temporary": o.temporary,
                    "psp_reference": o.psp_reference,
                    "merchant_reference": o.merchant_reference,
                    "detail": o.detail,
                    "closed": o.closed,
                    "amount": o.amount,
                    "fee": o.fee,
                    "currency": o.currency,
                    "kind": o.kind,
                }
                if o.created_at is not None:
                    item["created_at"] = iso(o.created_at)
                batch.put_item(Item=item)

    def outcomes(self, run_id: str) -> Iterator[Outcome]:
        condition = Key("pk").eq(f"run#{run_id}")
        for i in items(self.table_name, KeyConditionExpression=condition, ConsistentRead=True):
            created = i.get("created_at")
            yield Outcome(
                line=int(i["line"]),
                klass=i["klass"] or None,
                temporary=bool(i["temporary"]),
                psp_reference=i["psp_reference"],
                merchant_reference=i["merchant_reference"],
                created_at=datetime.fromisoformat(created) if created else None,
                detail=i["detail"],
                closed=i["closed"],
                amount=int(i["amount"]),
                fee=int(i["fee"]),
                currency=i["currency"],
                kind=i.get("kind", ""),
            )


class QueuePostingSink(QueuePublisher):
    """Settlement journals to the ledger's postings queue (ten per SQS call; a refusal raises, so the
    caller's chunk is retried, and the ledger books each journal once)."""

    def post(self, journals: Sequence[JournalPosting]) -> None:
        self.publish_many(journals)


class ReviewQueue:
    def __init__(self, queue_url: str) -> None:
        self.publisher = QueuePublisher(queue_url)

    def send(self, items: Sequence[ReviewItem]) -> None:
        self.publisher.publish_many(items)


# --- S3 ----------------------------------------------------------------------------------------------

NOT_FOUND = ("404", "NoSuchKey", "NoSuchVersion")


def _object_kwargs(source: ObjectRef) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"Bucket": source.bucket, "Key": source.key}
    if source.version:
        kwargs["VersionId"] = source.version
    return kwargs


def settlement_text(binary: IO[bytes]) -> io.TextIOWrapper:
    """A settlement file's bytes as lines of text, decoded as they stream: UTF-8 (a BOM dropped,
    undecodable bytes as U+FFFD), any line end (\n, \r\n or \r)."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")


class S3SettlementFiles:
    def head(self, source: ObjectRef) -> ObjectHead | None:
        try:
            head = client("s3").head_object(**_object_kwargs(source))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in NOT_FOUND:
                return None
            raise
        return ObjectHead(
            etag=str(head.get("ETag", "")).strip('"'),
            size=int(head.get("ContentLength", 0)),
            metadata=dict(head.get("Metadata", {})),
        )

    def first_line(self, source: ObjectRef, max_bytes: int = 4096) -> str:
        body: bytes = client("s3").get_object(**_object_kwargs(source), Range=f"bytes=0-{max_bytes - 1}")["Body"].read()
        text = body.decode("utf-8-sig", errors="replace")
        return text.split("\n", 1)[0].rstrip("\r")

    def lines(self, source: ObjectRef) -> io.TextIOWrapper:
        """The object's lines, read from S3 as they are needed (1 MiB at a time), never the whole object."""
        body = client("s3").get_object(**_object_kwargs(source))["Body"]
        return settlement_text(io.BufferedReader(body, buffer_size=1 << 20))

    def put_report(self, target: ObjectRef, body: bytes | IO[bytes], content_type: str) -> None:
        if isinstance(body, bytes):
            client("s3").put_object(Bucket=target.bucket, Key=target.key, Body=body, ContentType=content_type)
        else:
            client("s3").upload_fileobj(body, target.bucket, target.key, ExtraArgs={"ContentType": content_type})


BREAKS_CSV_COLUMNS = ("class", "temporary", "line", "psp_reference", "merchant_reference", "detail")


class SpooledBreaksCsv:
    """A run's breaks report as CSV, in memory up to 1 MiB and in a temporary file beyond."""

    def __init__(self) -> None:
        self.spool = tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+b")  # noqa: SIM115 - read back later
        self.text = io.TextIOWrapper(self.spool, encoding="utf-8", newline="")
        self._csv = csv.writer(self.text, lineterminator="\n")
        self._csv.writerow(BREAKS_CSV_COLUMNS)

    def add(
        self, klass: str, temporary: bool, line: int | None, psp_reference: str, merchant_reference: str, detail: str
    ) -> None:
        self._csv.writerow(
            (klass, "true" if temporary else "false", line or "", psp_reference, merchant_reference, detail)
        )

    def contents(self) -> IO[bytes]:
        """The CSV so far, from its start, as a binary stream for upload."""
        self.text.flush()
        self.spool.seek(0)
        return self.spool


# --- Step Functions -----------------------------------------------------------------------------------


class StepFunctionsLargeFileRuns:
    def __init__(self, state_machine_arn: str) -> None:
        self.state_machine_arn = state_machine_arn

    def start(self, run_id: str, source: ObjectRef) -> None:
        """Start the Distributed Map for this run; its name is the run id, so a second start is a no-op."""
        payload = {"run_id": run_id, "bucket": source.bucket, "key": source.key, "version": source.version or ""}
        try:
            client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn, name=run_id, input=json.dumps(payload)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise

    def row_done(self, task_token: str, line: int) -> None:
        client("stepfunctions").send_task_success(taskToken=task_token, output=json.dumps({"line": line}))
