"""The wallet's holds and refunds workers wait, by age, for a message on another queue: a release or a refund
for an order whose credit is still on the wallet queue, a refund's restore for its debit. On the template:
their queues retry a waiting record for longer than the wallet queue keeps the credit it waits for, and keep
it until the worker's own age check dead-letters it. In moto, with the template's resources and the worker's
own environment: a release before its credit is hidden for its backoff, not failed, and succeeds once the
credit lands; a restore before its debit is hidden alike; a release past its maximum age is dead-lettered."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.common.aws import reset_clients
from functions.common.backoff import SQS_MAX_RECEIVE_COUNT, RetryPolicy
from functions.common.dynamo import reset_tables
from functions.common.events import ReleaseHold
from functions.common.refund_events import RefundMoney
from functions.wallet import keys
from functions.wallet.holds import HeldShare
from functions.wallet.settings import (
    WalletHoldsSettings,
    WalletRefundSettings,
    WalletWaitSettings,
    default_wallet_wait_policy,
)
from functions.wallet.store import DynamoWalletStore
from local_stack.deploy import Deployer, LocalCloud
from local_stack.lambda_worker import LocalContext
from local_stack.stack import local_function_settings, with_overrides
from tests.conftest import Synthesized
from tests.infra.template_facts import base_name, by_base_name, references

HOLDS_WORKER = "functions.wallet.holds_handler.handler"
REFUNDS_WORKER = "functions.wallet.refund_handler.handler"
# Each waiting worker, the settings it reads and the queue it consumes.
WAITERS: dict[str, tuple[type[WalletWaitSettings], str]] = {
    HOLDS_WORKER: (WalletHoldsSettings, "HoldsWalletHoldsQueue"),
    REFUNDS_WORKER: (WalletRefundSettings, "RefundsWalletRefundsQueue"),
}
SELLER = "seller_w"
ORDER = "po_waits"


def _worker(synthesized: Synthesized, handler: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, props),) = [
        (k, f["Properties"])
        for k, f in synthesized.resources("AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == handler
    ]
    return logical_id, props


def _queue(synthesized: Synthesized, name: str) -> tuple[str, dict[str, Any]]:
    logical_id, queue = by_base_name(synthesized.template, "AWS::SQS::Queue")[name]
    return logical_id, queue["Properties"]


def _environment(props: dict[str, Any]) -> dict[str, str]:
    """The function's environment, each reference (a table name, a queue url) as a placeholder string."""
    return {
        name: value if isinstance(value, str) else f"ref:{references(value)}"
        for name, value in props["Environment"]["Variables"].items()
    }


def _shortest_wait(policy: RetryPolicy, receives: int) -> int:
    """Seconds a message is retried over `receives` receives that each fail at once, every backoff the
    shortest jitter allows."""
    return sum(policy.delay_seconds(n, lambda: 0.0) for n in range(1, receives))


def test_the_wallet_queue_keeps_a_credit_four_days(synthesized: Synthesized) -> None:
    # What the waiting workers are sized against (functions/wallet/settings.py)
    _, wallet_queue = _queue(synthesized, "PayInWalletQueue")
    assert wallet_queue["MessageRetentionPeriod"] == 4 * 86400
    assert wallet_queue["RedrivePolicy"]["maxReceiveCount"] == 5


@pytest.mark.parametrize("handler", WAITERS)
def test_a_waiting_record_is_retried_longer_than_the_wallet_queue_keeps_its_credit(
    synthesized: Synthesized, handler: str
) -> None:
    settings_model, queue_name = WAITERS[handler]
    worker_id, worker = _worker(synthesized, handler)
    settings = settings_model.from_env(_environment(worker))
    policy = settings.retry_policy
    assert policy == default_wallet_wait_policy()
    assert policy == RetryPolicy(base_seconds=5, cap_seconds=1800, max_age_seconds=7 * 86400, error_receives=5)
    # The worker consumes this queue, and settles its failed records there and in that queue's DLQ
    queue_id, queue = _queue(synthesized, queue_name)
    (mapping,) = [
        m["Properties"]
        for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        if references(m["Properties"]["FunctionName"]) == [worker_id]
    ]
    assert references(mapping["EventSourceArn"]) == [queue_id]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (dlq_id,) = references(queue["RedrivePolicy"]["deadLetterTargetArn"])
    assert base_name(dlq_id) == f"{queue_name}Dlq"
    assert references(worker["Environment"]["Variables"]["DEAD_LETTER_QUEUE_URL"]) == [dlq_id]

    wallet_retention = _queue(synthesized, "PayInWalletQueue")[1]["MessageRetentionPeriod"]
    max_receive_count = queue["RedrivePolicy"]["maxReceiveCount"]
    # The backstop: receives within a week, each failing at once after the shortest backoff, fit SQS's limit
    assert max_receive_count == policy.worst_case_receives() == 681 <= SQS_MAX_RECEIVE_COUNT
    # Those receives retry a waiting record for at least its maximum age, which outlasts the wallet queue's
    # retention: SQS's redrive never gives up on a record while its credit may still arrive from that queue
    assert _shortest_wait(policy, max_receive_count) >= policy.max_age_seconds > wallet_retention
    # (one receive fewer would not: the backstop is no larger than it needs to be)
    assert _shortest_wait(policy, max_receive_count - 1) <= policy.max_age_seconds
    # The queue keeps a record past its maximum age and its last backoff: the worker's age check, not SQS's
    # retention, ends its retries (a day more, within SQS's 14 days)
    assert queue["MessageRetentionPeriod"] == 8 * 86400 >= policy.max_age_seconds + policy.cap_seconds
    # The first retries come within seconds, then at most every 30 minutes
    assert [policy.ceiling(n) for n in (1, 2, 3)] == [5, 10, 20]
    assert policy.ceiling(11) == 1800
    # Locally (base 1 s, cap 4 s, 15 minutes) the same backstop still never fires before the age check
    local = settings_model.from_env(with_overrides(_environment(worker), local_function_settings())).retry_policy
    assert local == RetryPolicy(base_seconds=1, cap_seconds=4, max_age_seconds=900, error_receives=5)
    assert local.worst_case_receives() == 453 <= max_receive_count


# -- in moto


class Waiter:
    """A waiting worker in this process with its template environment (and the local stack's short backoff),
    on the template's resources in moto."""

    def __init__(self, cloud: LocalCloud, handler: str, environment: dict[str, str]) -> None:
        self.handler = handler
        module_name = handler.rsplit(".", 1)[0]
        spec = next(f for f in cloud.functions.values() if f.handler == handler)
        self.environment = with_overrides(spec.environment, environment)
        self.source = next(m.source_arn for m in cloud.event_sources if m.function == spec.logical_id)
        self.queue_url = cloud.queue_url_by_arn(self.source)
        self.module = importlib.import_module(module_name)
        self.store = DynamoWalletStore(self.environment["WALLET_TABLE_NAME"])

    def receive(self, *bodies: str) -> dict[str, Any]:
        """Send the bodies to the worker's queue and receive them as the event source would."""
        sqs = boto3.client("sqs")
        for body in bodies:
            sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
        return self.receive_again(len(bodies))

    def receive_again(self, count: int = 1) -> dict[str, Any]:
        sqs = boto3.client("sqs")
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + 5
        while len(messages) < count and time.monotonic() < deadline:
            messages += sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], WaitTimeSeconds=1
            ).get("Messages", [])
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m["Attributes"],
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.source,
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }

    def handle(self, event: dict[str, Any]) -> Any:
        context = LocalContext(function_name="worker", memory_mb=512, timeout_seconds=30, request_id="req-1")
        return self.module.handler(event, context)

    def visible(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = (
            boto3.client("sqs").receive_message(QueueUrl=self.queue_url, WaitTimeSeconds=0).get("Messages", [])
        )
        return messages

    def dead_letters(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = (
            boto3.client("sqs")
            .receive_message(
                QueueUrl=self.environment["DEAD_LETTER_QUEUE_URL"],
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            .get("Messages", [])
        )
        return messages

    def credit_held_order(self) -> None:
        assert self.store.credit_once(
            seller_id=SELLER,
            currency="EUR",
            amount=8_500,
            applied_marker=keys.charge_marker(ORDER),
            held=HeldShare(release_after="2026-03-08T10:00:00Z", due_day="2026-03-08"),
        )


# The cached ports (and batch options) of each worker's module, built from its environment.
PORTS_CACHE = {HOLDS_WORKER: "_release_ports", REFUNDS_WORKER: "_ports"}


@pytest.fixture
def waiter(synthesized: Synthesized, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Waiter]]:
    """`waiter(handler, **settings)`: the worker, with the local stack's settings and these on top."""
    made: list[Waiter] = []
    with mock_aws():
        reset_clients()
        reset_tables()
        cloud = Deployer(synthesized.template, "Payments", boto3.client).deploy()

        def make(handler: str, **settings: str) -> Waiter:
            worker = Waiter(cloud, handler, {**local_function_settings(), **settings})
            for name, value in worker.environment.items():
                monkeypatch.setenv(name, value)
            getattr(worker.module, PORTS_CACHE[handler]).cache_clear()
            made.append(worker)
            return worker

        yield make
    for worker in made:
        getattr(worker.module, PORTS_CACHE[worker.handler]).cache_clear()
    reset_clients()
    reset_tables()


def _release() -> str:
    return ReleaseHold(payment_order_id=ORDER, seller_id=SELLER, reason="fulfilled").model_dump_json()


def _restore() -> str:
    return RefundMoney(
        refund_id="rf_" + "w" * 32,
        payment_order_id=ORDER,
        payment_id="pay_w",
        seller_id=SELLER,
        amount=4_000,
        application_fee_refunded=600,
        currency="EUR",
        movement="restore",
    ).model_dump_json()


def _failed(result: Any) -> list[str]:
    return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]


def test_a_release_before_its_credit_is_hidden_for_its_backoff_and_succeeds_once_the_credit_lands(
    waiter: Callable[..., Waiter],
) -> None:
    holds = waiter(HOLDS_WORKER)
    # Given a release whose order the wallet has not credited yet (its credit is still on the wallet queue)
    event = holds.receive(_release())
    # When the holds worker takes it: the record is reported failed, and the invocation does not fail
    assert _failed(holds.handle(event)) == [event["Records"][0]["messageId"]]
    # Then it is hidden for the policy's first backoff (1 s with the local stack's base), not for the
    # queue's 180-s visibility timeout, and nothing is dead-lettered for it
    assert holds.visible() == []
    time.sleep(1.2)
    again = holds.receive_again()
    (record,) = again["Records"]
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert holds.dead_letters() == []
    # When the credit lands, the retried release moves the held share to available
    holds.credit_held_order()
    assert holds.handle(again) == {"batchItemFailures": []}
    hold = holds.store.hold(SELLER, ORDER)
    assert hold is not None and (hold.status, hold.released) == ("RELEASED", 8_500)
    assert holds.dead_letters() == []


def test_a_restore_before_its_debit_is_hidden_for_its_backoff(waiter: Callable[..., Waiter]) -> None:
    refunds = waiter(REFUNDS_WORKER)
    # Given a held order credited, and the restore of a refund whose debit has not landed yet
    refunds.credit_held_order()
    event = refunds.receive(_restore())
    # When the refunds worker takes it: reported failed, hidden for 1 s, then received again
    assert _failed(refunds.handle(event)) == [event["Records"][0]["messageId"]]
    assert refunds.visible() == []
    time.sleep(1.2)
    (record,) = refunds.receive_again()["Records"]
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    # And nothing moved, nothing was dead-lettered
    assert refunds.store.balances(SELLER)["EUR"].pending == 8_500
    assert refunds.dead_letters() == []


def test_a_release_older_than_its_maximum_age_goes_to_the_dead_letter_queue(waiter: Callable[..., Waiter]) -> None:
    holds = waiter(HOLDS_WORKER, MAX_MESSAGE_AGE_SECONDS="1")
    # Given a release still waiting for its credit when it is older than its maximum age (1 s here)
    event = holds.receive(_release())
    time.sleep(1.2)
    # When the holds worker takes it: reported done (the event source deletes it), copied to the DLQ
    assert holds.handle(event) == {"batchItemFailures": []}
    (dead,) = holds.dead_letters()
    assert dead["Body"] == _release()
    assert dead["MessageAttributes"]["dead_letter_reason"]["StringValue"] == "max_age"
    assert dead["MessageAttributes"]["source_message_id"]["StringValue"] == event["Records"][0]["messageId"]
