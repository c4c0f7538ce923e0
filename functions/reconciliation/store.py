"""Adapters: the runs table and the settlement objects in S3 (read as a stream, never whole)."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import Any

from functions.common.aws import client
from functions.common.dynamo import plain, table
from functions.reconciliation.domain import ObjectRef, Run


class DynamoRunStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def get(self, run_id: str) -> Run | None:
        item = table(self.table_name).get_item(Key={"run_id": run_id}, ConsistentRead=True).get("Item")
        return None if item is None else Run.model_validate(plain(item))

    def put(self, run: Run) -> None:
        table(self.table_name).put_item(Item=run.model_dump(exclude_none=True))

    def list_runs(self, limit: int) -> list[Run]:
        runs: list[Run] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = table(self.table_name).scan(**kwargs)
            runs.extend(Run.model_validate(plain(i)) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(runs, key=lambda r: r.created_at, reverse=True)[:limit]


def object_lines(source: ObjectRef) -> Iterator[str]:
    """The object's text lines, decoded as UTF-8 while streaming (a bad byte raises ValueError)."""
    kwargs: dict[str, Any] = {"Bucket": source.bucket, "Key": source.key}
    if source.version:
        kwargs["VersionId"] = source.version
    body = client("s3").get_object(**kwargs)["Body"]
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    for chunk in body.iter_chunks(chunk_size=1 << 20):
        pending += decoder.decode(chunk)
        *complete, pending = pending.split("\n")
        for line in complete:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending
