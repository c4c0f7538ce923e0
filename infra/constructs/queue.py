"""A queue with its dead-letter queue, both encrypted with the stack's `Messages` key, and the alarms
every queue gets: a message in the DLQ, work waiting too long, and a dead letter nearing expiry. Both refuse
requests without TLS through the stack's one queue policy (infra/constructs/queue_policy.py), not a policy
each (`enforce_ssl`)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.alarms import ON_ANY_OCCURRENCE
from infra.constructs.encryption import encryption_key

MAX_RECEIVE_COUNT = 5
QUEUE_RETENTION = Duration.days(4)
DLQ_RETENTION = Duration.days(14)  # SQS's maximum
# A dead letter still unhandled after 10 days is 4 days from being deleted by SQS: page again.
DLQ_EXPIRY_WARNING = Duration.days(10)


class MonitoredQueue(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        visibility_timeout: Duration,
        alarm_topic: sns.ITopic,
        max_message_age: Duration = Duration.minutes(15),
        max_receive_count: int = MAX_RECEIVE_COUNT,
        retention_period: Duration = QUEUE_RETENTION,
    ) -> None:
        super().__init__(scope, construct_id)
        key = encryption_key(self, "Messages")
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            retention_period=DLQ_RETENTION,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            data_key_reuse=Duration.minutes(5),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=visibility_timeout,
            retention_period=retention_period,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            # Fewer KMS calls (cost, throttling) for a still-short reuse window.
            data_key_reuse=Duration.minutes(5),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=max_receive_count),
        )
        action = cw_actions.SnsAction(alarm_topic)
        dlq_depth = self.dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)).create_alarm(
            self,
            "DlqDepthAlarm",
            evaluation_periods=1,
            **ON_ANY_OCCURRENCE,
            alarm_description=f"Messages in the dead-letter queue of {construct_id}: a message was received "
            f"{max_receive_count} times, or its worker gave up on it (too old, or a lasting error), and needs "
            "a person.",
        )
        age = self.queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1)).create_alarm(
            self,
            "MessageAgeAlarm",
            threshold=max_message_age.to_seconds(),
            evaluation_periods=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"The oldest message in {construct_id} is older than expected: consumers are behind.",
        )
        dlq_expiry = self.dlq.metric_approximate_age_of_oldest_message(period=Duration.minutes(5)).create_alarm(
            self,
            "DlqExpiryAlarm",
            threshold=DLQ_EXPIRY_WARNING.to_seconds(),
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"A dead letter of {construct_id} is {DLQ_EXPIRY_WARNING.to_days()} days old; SQS "
            f"deletes it at {DLQ_RETENTION.to_days()} days. Redrive or record it now.",
        )
        self.alarms = (dlq_depth, age, dlq_expiry)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)

    def grant_backoff(self, worker: iam.IGrantable) -> None:
        """What a worker that settles its own failed records (functions/common/backoff.py) needs besides its
        event source's grants: ChangeMessageVisibility on this queue (backoff; also in the consume grant), and
        SendMessage to this queue's DLQ (a message past its age, a lasting error, or poison)."""
        self.queue.grant(worker, "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl")
        self.dlq.grant_send_messages(worker)
