"""The messages reconciliation consumes, each kind validated by its own model.

The file queue carries four kinds. Two are the large-file state machine's (infra/constructs/settlement.py),
each with its explicit `type`: `finalize` once every row of a distributed run is in, `map_failed` when
the Distributed Map failed. The other two are S3's, whose shape we do not control: the notification of
a new settlement file (recognised by its `Records`) and the test event S3 sends when the notification
is configured (recognised by its `Event`). The rows queue carries one kind: a row of a large file."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Discriminator, Field, RootModel, Tag

from functions.reconciliation.models import ObjectRef


class FinalizeRun(BaseModel):
    """Every row of a distributed run is reconciled: fold the outcomes and complete the run."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["finalize"]
    run_id: str


class MapFailed(BaseModel):
    """The Distributed Map of a run failed: the run fails with the cause."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["map_failed"]
    run_id: str
    error: dict[str, Any] = Field(default_factory=dict)  # Step Functions' {"Error": ..., "Cause": ...}

    def cause(self) -> str:
        return json.dumps(self.error)[:500]


class S3Object(BaseModel):
    key: str  # URL-encoded, as S3 sends it
    etag: str | None = Field(default=None, alias="eTag")
    version_id: str | None = Field(default=None, alias="versionId")


class S3Bucket(BaseModel):
    name: str


class S3Entity(BaseModel):
    bucket: S3Bucket
    object_: S3Object = Field(alias="object")


class S3NotificationRecord(BaseModel):
    s3: S3Entity

    def source(self) -> ObjectRef:
        return ObjectRef(
            bucket=self.s3.bucket.name,
            key=unquote_plus(self.s3.object_.key),
            version=self.s3.object_.version_id or None,
            etag=(self.s3.object_.etag or "").strip('"') or None,
        )


class S3Notification(BaseModel):
    """S3's notification of new settlement objects (its own shape: no type, a list of Records)."""

    records: list[S3NotificationRecord] = Field(alias="Records")


class S3TestEvent(BaseModel):
    """What S3 sends once when the notification is configured; nothing to do."""

    event: Literal["s3:TestEvent"] = Field(alias="Event")


_TAGS: dict[type[BaseModel], str] = {
    FinalizeRun: "finalize",
    MapFailed: "map_failed",
    S3Notification: "s3_notification",
    S3TestEvent: "s3_test_event",
}


def _kind(body: Any) -> str | None:
    """Our messages by their `type`; S3's by their shape (None: no kind, which fails validation)."""
    if isinstance(body, dict):
        if "type" in body:
            return str(body["type"])
        if "Records" in body:
            return "s3_notification"
        if "Event" in body:
            return "s3_test_event"
        return None
    return _TAGS.get(type(body))


FileQueueKind = Annotated[
    Annotated[FinalizeRun, Tag("finalize")]
    | Annotated[MapFailed, Tag("map_failed")]
    | Annotated[S3Notification, Tag("s3_notification")]
    | Annotated[S3TestEvent, Tag("s3_test_event")],
    Discriminator(_kind),
]


class FileQueueMessage(RootModel[FileQueueKind]):
    """One message of the file queue, as its own kind."""


class ScheduledCheck(BaseModel):
    """EventBridge's scheduled event: its `time` is the moment the check is for."""

    time: datetime


class RowTask(BaseModel):
    """A row of a large file, sent by the Distributed Map with the token to report it done."""

    run_id: str
    line: int
    row: dict[str, str]
    task_token: str
