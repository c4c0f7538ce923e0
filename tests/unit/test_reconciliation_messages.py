"""The file queue's message kinds: ours by their `type`, S3's by their own shape, anything else refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from functions.reconciliation.messages import FileQueueMessage, FinalizeRun, MapFailed, S3Notification, S3TestEvent
from functions.reconciliation.models import ObjectRef


def test_the_state_machines_messages_are_told_apart_by_their_type() -> None:
    finalize = FileQueueMessage.model_validate_json('{"type": "finalize", "run_id": "rr_1"}').root
    failed = FileQueueMessage.model_validate_json(
        '{"type": "map_failed", "run_id": "rr_1", "error": {"Error": "States.Timeout", "Cause": "slow"}}'
    ).root

    assert finalize == FinalizeRun(type="finalize", run_id="rr_1")
    assert isinstance(failed, MapFailed)
    assert (failed.run_id, failed.cause()) == ("rr_1", '{"Error": "States.Timeout", "Cause": "slow"}')


def test_an_s3_notification_is_recognised_by_its_shape_and_names_its_objects() -> None:
    body = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "settlement-bucket", "arn": "arn:aws:s3:::settlement-bucket"},
                    "object": {"key": "settlements/2026-05-01/psp+file%282%29.csv", "eTag": '"abc"', "versionId": "v1"},
                },
            },
            {"s3": {"bucket": {"name": "settlement-bucket"}, "object": {"key": "settlements/b.csv", "versionId": ""}}},
        ]
    }

    notification = FileQueueMessage.model_validate(body).root

    assert isinstance(notification, S3Notification)
    assert [r.source() for r in notification.records] == [
        ObjectRef(bucket="settlement-bucket", key="settlements/2026-05-01/psp file(2).csv", version="v1", etag="abc"),
        ObjectRef(bucket="settlement-bucket", key="settlements/b.csv"),
    ]


def test_s3s_test_event_is_its_own_kind() -> None:
    body = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "settlement-bucket", "RequestId": "r"}
    assert FileQueueMessage.model_validate(body).root == S3TestEvent(Event="s3:TestEvent")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"finalize": {"run_id": "rr_1"}}, "union_tag_not_found"),  # the shape before messages had a type
        ({"type": "finalise", "run_id": "rr_1"}, "union_tag_invalid"),
        ({"type": "finalize"}, "missing"),
        ({"type": "finalize", "run_id": "rr_1", "map_failed": {}}, "extra_forbidden"),
        ({"Records": [{"s3": {"bucket": {"name": "b"}}}]}, "missing"),
        ({"Event": "s3:ObjectCreated"}, "literal_error"),
        ([], "union_tag_not_found"),
    ],
)
def test_a_message_of_no_known_kind_is_refused(body: Any, error: str) -> None:
    with pytest.raises(ValidationError) as refused:
        FileQueueMessage.model_validate(body)
    assert [e["type"] for e in refused.value.errors()] == [error]
