"""The event functions against moto with the template's resources and each function's own environment:
a replayed stream record stores one event, the events table's stream puts it on the bus, the bus's rule
hands it to the fan-out queue, and the fan-out queues one delivery per subscribed endpoint; endpoint
secrets are sealed with KMS and bound to their endpoint; the event list reads the indexes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from functions.common.kms_sealer import KmsSecretSealer
from functions.events import handler
from functions.events.endpoint_store import DynamoEndpointStore
from functions.events.endpoints import Endpoint
from functions.events.event_store import DynamoEventStore
from functions.events.models import DeliveryMessage, Event
from functions.events.settings import (
    EventDeliverySettings,
    EventFanoutSettings,
    EventRecorderSettings,
    EventsApiSettings,
)
from functions.events.sources import SourcedEvent, event_id
from local_stack.deploy import LocalCloud
from tests.integration.conftest import context, sqs_event

RECORD = "functions.events.handler.record_handler"
PUBLISH = "functions.events.handler.publish_handler"
FANOUT = "functions.events.handler.fanout_handler"
API = "functions.events.api.api_handler"


def _clear_caches() -> None:
    for cached in (handler._recorder, handler._publisher, handler._fanout, handler._delivery):
        cached.cache_clear()


@pytest.fixture(autouse=True)
def fresh_handlers() -> Any:
    _clear_caches()
    yield
    _clear_caches()


def _dynamodb_json(item: dict[str, Any]) -> dict[str, Any]:
    serializer = TypeSerializer()
    return {k: serializer.serialize(v) for k, v in item.items()}


def _stream_event(stream_arn: str, item: dict[str, Any], *, sequence: str = "100") -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventID": f"e{sequence}",
                "eventName": "MODIFY",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1767600000,
                    "Keys": _dynamodb_json({"payout_id": item["payout_id"]}),
                    "NewImage": _dynamodb_json(item),
                    "SequenceNumber": sequence,
                    "SizeBytes": 100,
                    "StreamViewType": "NEW_IMAGE",
                },
                "eventSourceARN": stream_arn,
            }
        ]
    }


def _payouts_stream(cloud: LocalCloud, table_name: str) -> str:
    (arn,) = [
        r.attributes["StreamArn"]
        for r in cloud.physical.values()
        if r.type == "AWS::DynamoDB::Table" and r.ref == table_name and "StreamArn" in r.attributes
    ]
    return str(arn)


def _payout(status: str) -> dict[str, Any]:
    return {
        "payout_id": "po_pay_int",
        "seller_id": "seller_a",
        "amount": 3000,
        "currency": "USD",
        "status": status,
        "trigger": "api",
        "created_at": "2026-01-05T11:00:00.000000+00:00",
        "updated_at": "2026-01-05T11:00:02.000000+00:00",
    }


def _queue_messages(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        page = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        if not page.get("Messages"):
            return found
        found.extend(page["Messages"])


def test_a_replayed_stream_record_stores_one_event_that_reaches_the_fanout_and_one_delivery_per_endpoint(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    # Given the recorder's environment and the payouts table's stream
    use_function_env(RECORD)
    settings = EventRecorderSettings.from_env()
    payouts_table = next(t for t, source in settings.source_by_table().items() if source == "payouts")
    stream_event = _stream_event(_payouts_stream(cloud, payouts_table), _payout("PAID"))

    # When the same stream record is handled twice (a retried batch)
    for _ in range(2):
        assert handler.record_handler(stream_event, context()) == {"batchItemFailures": []}

    # Then the events table holds one event, with the outcome's id
    events_table = boto3.resource("dynamodb").Table(settings.events_table)
    items = events_table.scan()["Items"]
    assert [i["event_id"] for i in items] == [event_id("payout.paid", "po_pay_int")]
    stored = Event.model_validate_json(str(items[0]["payload"]))
    assert (stored.type, stored.created, stored.data["payout_id"]) == ("payout.paid", 1767600000, "po_pay_int")

    # When its insertion is published (the events table's stream), the bus's rule puts it on the fan-out queue
    use_function_env(PUBLISH)
    events_stream = _payouts_stream(cloud, settings.events_table)
    insert = {
        "Records": [
            {
                **_stream_event(events_stream, _payout("PAID"))["Records"][0],
                "eventName": "INSERT",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1767600001,
                    "Keys": _dynamodb_json({"event_id": items[0]["event_id"]}),
                    "NewImage": _dynamodb_json(dict(items[0])),
                    "SequenceNumber": "200",
                    "SizeBytes": 100,
                    "StreamViewType": "NEW_IMAGE",
                },
            }
        ]
    }
    assert handler.publish_handler(insert, context()) == {"batchItemFailures": []}
    fanout_queue = next(
        r.ref
        for r in cloud.physical.values()
        if r.type == "AWS::SQS::Queue" and "EventsFanoutQueue" in r.logical_id and "Dlq" not in r.logical_id
    )
    (on_bus,) = _queue_messages(fanout_queue)
    envelope = json.loads(on_bus["Body"])
    assert envelope["source"] == "payments.marketplace-events" and envelope["detail-type"] == "payout.paid"
    assert envelope["detail"] == {"tenant_id": "default", "event": stored.model_dump(mode="json")}

    # When two endpoints exist, one subscribed to payout.paid
    use_function_env(FANOUT)
    fanout = EventFanoutSettings.from_env()
    endpoints = DynamoEndpointStore(fanout.endpoints_table)
    for endpoint_id, types in (("we_paid", ["payout.paid"]), ("we_payments", ["payment.succeeded"])):
        endpoints.insert(
            Endpoint(
                tenant_id="default",
                endpoint_id=endpoint_id,
                url=f"https://{endpoint_id}.example.com/",
                events=types,
                created_at="2026-01-05T00:00:00.000000+00:00",
                secret_ciphertext=b"sealed",
                request_fingerprint="f",
            )
        )
    # Then the fan-out queues one delivery, to the subscribed endpoint
    assert handler.fanout_handler(sqs_event(on_bus["Body"]), context()) == {"batchItemFailures": []}
    (queued,) = _queue_messages(fanout.delivery_queue_url)
    assert DeliveryMessage.model_validate_json(queued["Body"]) == DeliveryMessage(
        tenant_id="default", endpoint_id="we_paid", event=stored
    )


def test_secrets_are_sealed_with_kms_and_open_only_for_their_endpoint(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    use_function_env(API)
    sealer = KmsSecretSealer(EventsApiSettings.from_env().secrets_key_arn)
    ciphertext = sealer.seal("whsec_secret", tenant_id="default", endpoint_id="we_1")
    assert b"whsec_secret" not in ciphertext
    assert sealer.open(ciphertext, tenant_id="default", endpoint_id="we_1") == "whsec_secret"
    with pytest.raises(ClientError):
        KmsSecretSealer(sealer.key_arn).open(ciphertext, tenant_id="default", endpoint_id="we_2")
    # the delivery function opens it with the same key, named by its own settings
    use_function_env("functions.events.handler.delivery_handler")
    assert EventDeliverySettings.from_env().secrets_key_arn == sealer.key_arn


def test_events_are_listed_per_tenant_and_type_in_recording_order(
    cloud: LocalCloud, use_function_env: Callable[[str], None]
) -> None:
    use_function_env(API)
    store = DynamoEventStore(EventsApiSettings.from_env().events_table)
    kinds = ["payout.paid", "payment.succeeded", "payout.paid", "payout.failed"]
    for n, kind in enumerate(kinds):
        event = Event(id=f"evt_{n}", type=kind, created=1767600000 + n, data={"n": n})
        assert store.add(SourcedEvent("default", event), sequence=f"{1000 + n:015d}#evt_{n}") is None
    store.add(SourcedEvent("acme", Event(id="evt_x", type="payout.paid", created=1, data={})), sequence="0#evt_x")

    assert [e.id for e in store.after("default", event_type=None, sequence=None, limit=10)] == [
        "evt_0",
        "evt_1",
        "evt_2",
        "evt_3",
    ]
    assert [e.id for e in store.after("default", event_type="payout.paid", sequence=None, limit=10)] == [
        "evt_0",
        "evt_2",
    ]
    cursor = store.get("evt_1")
    assert cursor is not None and cursor.tenant_id == "default"
    assert [e.id for e in store.after("default", event_type=None, sequence=cursor.sequence, limit=2)] == [
        "evt_2",
        "evt_3",
    ]
    # a second add of a stored id changes nothing and returns what is stored
    again = store.add(SourcedEvent("default", Event(id="evt_0", type="payout.paid", created=5, data={})), sequence="9")
    assert again is not None and again.event.data == {"n": 0}
