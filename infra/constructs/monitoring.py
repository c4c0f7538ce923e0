"""The operations view: one CloudWatch dashboard and the alarms that are not per queue.

Built last, from what the stack contains: every MonitoredQueue's age and DLQ depth and every
ServiceFunction's errors appear without being listed by hand. Business metrics are the ones the
functions publish with Powertools (EMF, namespace `Payments`, dimension `service`)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from functions.common.settings import FunctionSettings
from functions.reconciliation.models import BREAK_CLASSES
from infra.config import stage_config
from infra.constructs.alarms import ON_ANY_OCCURRENCE
from infra.constructs.function import ServiceFunction
from infra.constructs.queue import MonitoredQueue

NAMESPACE: str = FunctionSettings.model_fields["metrics_namespace"].default
MINUTE = Duration.minutes(1)
# The executor's PSP timeout is 2 s: a p99 near it means charges are about to time out and be retried.
PSP_LATENCY_P99_ALARM_MS = 1500


def business_metric(
    name: str, service: str, *, statistic: str = "Sum", label: str | None = None, period: Duration = MINUTE
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=statistic,
        period=period,
        label=label,
    )


# (metric, service) pairs the functions publish; the dashboard and alarms read these.
PAYMENTS_ACCEPTED = ("PaymentsAccepted", "payment")
PAYMENT_OUTCOMES = (
    ("PaymentsSucceeded", "payment-status"),
    ("PaymentsPartiallyFailed", "payment-status"),
    ("PaymentsFailed", "payment-status"),
)
CHARGES_DECLINED = ("ChargesDeclined", "executor")
PSP_LATENCY = ("PspChargeLatency", "executor")
# The reconciliation publishes one metric per break class (temporary, cut-off breaks are separate).
RECONCILIATION_SERVICE = "reconciliation"
SETTLEMENT_FILE_FAILED = ("SettlementFileFailed", RECONCILIATION_SERVICE)


# Money that went where it should not, from every function that can see it: a charge the PSP made for an
# order we decided FAILED (webhooks and recovery through resolve_order, the executor's own charge), and a
# PSP refusal the client does not know (the executor's charges, the payout executor's payouts).
ORPHAN_CHARGES = ("OrphanCharges", ("executor", "psp-webhooks", "recovery"))
PSP_UNKNOWN_REFUSALS = ("PspUnknownRefusal", ("executor", "payout-executor"))
# A journal id booked again with other content (functions/ledger/domain.py), by either booking function.
JOURNAL_CONFLICTS = ("LedgerJournalConflicts", ("ledger", "ledger-postings"))


def summed(name: str, services: tuple[str, ...], period: Duration, label: str) -> cloudwatch.MathExpression:
    """One metric's count summed over the services that publish it (a service with no data counts 0)."""
    using = {f"s{i}": business_metric(name, service, period=period) for i, service in enumerate(services)}
    return cloudwatch.MathExpression(
        expression="+".join(f"FILL({key},0)" for key in using), using_metrics=using, label=label, period=period
    )


def reconciliation_breaks(period: Duration, label: str = "Reconciliation breaks") -> cloudwatch.MathExpression:
    """Every break class's count, summed (a class with no data counts 0)."""
    using = {
        f"b{i}": business_metric(f"SettlementBreaks_{klass}", RECONCILIATION_SERVICE, period=period)
        for i, klass in enumerate(BREAK_CLASSES)
    }
    return cloudwatch.MathExpression(
        expression="+".join(f"FILL({name},0)" for name in using), using_metrics=using, label=label, period=period
    )


class Monitoring(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, alarm_topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        config = stage_config(self)
        if config.alarm_email:
            alarm_topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        action = cw_actions.SnsAction(alarm_topic)
        stack = Stack.of(self)
        queues = [c for c in stack.node.find_all() if isinstance(c, MonitoredQueue)]
        functions = [c for c in stack.node.find_all() if isinstance(c, ServiceFunction)]

        def name(construct: Construct) -> str:
            return construct.node.path.removeprefix(f"{stack.node.path}/")

        psp_p99 = business_metric(*PSP_LATENCY, statistic="p99", label="PSP charge latency p99 (ms)")
        # Alarms on the plain metrics (a label would turn them into metric-math alarms).
        self.alarms: list[cloudwatch.Alarm] = [
            business_metric(*PSP_LATENCY, statistic="p99", period=Duration.minutes(5)).create_alarm(
                self,
                "PspLatencyAlarm",
                threshold=PSP_LATENCY_P99_ALARM_MS,
                evaluation_periods=3,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description="PSP charge latency p99 is near the client timeout: charges will start timing "
                "out and be retried.",
            ),
            reconciliation_breaks(Duration.hours(1)).create_alarm(
                self,
                "ReconciliationBreaksAlarm",
                evaluation_periods=1,
                **ON_ANY_OCCURRENCE,
                alarm_description="The settlement file did not reconcile: see the run's report under reports/.",
            ),
            business_metric(*SETTLEMENT_FILE_FAILED, period=Duration.hours(1)).create_alarm(
                self,
                "SettlementFileFailedAlarm",
                evaluation_periods=1,
                **ON_ANY_OCCURRENCE,
                alarm_description="A settlement file was rejected (unreadable or not a settlement file): it was "
                "not reconciled.",
            ),
            summed(*ORPHAN_CHARGES, Duration.minutes(5), "Orphan charges").create_alarm(
                self,
                "OrphanChargesAlarm",
                evaluation_periods=1,
                **ON_ANY_OCCURRENCE,
                alarm_description="The PSP charged an order we decided FAILED (an orphan charge): the buyer paid "
                "for nothing. The charge is recorded on the order (orphan_psp_reference); refund it at the PSP.",
            ),
            summed(*PSP_UNKNOWN_REFUSALS, Duration.minutes(5), "Unknown PSP refusals").create_alarm(
                self,
                "PspUnknownRefusalAlarm",
                evaluation_periods=1,
                **ON_ANY_OCCURRENCE,
                alarm_description="The PSP refused a charge or payout with a 4xx it does not document for it: "
                "the work failed; the function's log names the PSP's code.",
            ),
            summed(*JOURNAL_CONFLICTS, Duration.minutes(5), "Ledger journal conflicts").create_alarm(
                self,
                "LedgerJournalConflictAlarm",
                evaluation_periods=1,
                **ON_ANY_OCCURRENCE,
                alarm_description="A ledger journal id arrived again with other content than it was booked with: "
                "a producer is sending wrong or forged postings. The message is in the ledger queue's DLQ; the "
                "first booking stands.",
            ),
        ]
        for function in functions:
            self.alarms.append(
                function.function.metric_errors(period=Duration.minutes(5)).create_alarm(
                    self,
                    f"{name(function).replace('/', '')}Errors",
                    evaluation_periods=2,
                    **ON_ANY_OCCURRENCE,
                    alarm_description=f"{name(function)} failed (crash or timeout) in two 5-minute periods in a row.",
                )
            )
        for alarm in self.alarms:
            alarm.add_alarm_action(action)

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"payments-{config.stage}",
            default_interval=Duration.hours(3),
        )
        width = 8
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Payments / min",
                left=[
                    business_metric(*PAYMENTS_ACCEPTED, label="accepted"),
                    *(business_metric(m, s, label=m.removeprefix("Payments").lower()) for m, s in PAYMENT_OUTCOMES),
                ],
                width=width,
            ),
            cloudwatch.GraphWidget(
                title="Declines / min", left=[business_metric(*CHARGES_DECLINED, label="declined")], width=width
            ),
            cloudwatch.GraphWidget(
                title="PSP latency p99 (ms)",
                left=[psp_p99, business_metric(*PSP_LATENCY, statistic="p50", label="p50")],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=PSP_LATENCY_P99_ALARM_MS, label="alarm")],
                width=width,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Queue age: oldest message (s)",
                left=[
                    q.queue.metric_approximate_age_of_oldest_message(period=MINUTE, statistic="Maximum", label=name(q))
                    for q in queues
                ],
                width=width,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth",
                left=[
                    q.dlq.metric_approximate_number_of_messages_visible(
                        period=MINUTE, statistic="Maximum", label=name(q)
                    )
                    for q in queues
                ],
                width=width,
            ),
            cloudwatch.SingleValueWidget(
                title="Reconciliation breaks (24 h)",
                metrics=[reconciliation_breaks(Duration.days(1))],
                width=width,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[f.function.metric_errors(period=MINUTE, label=name(f)) for f in functions],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Function throttles (executor: PSP rate cap)",
                left=[f.function.metric_throttles(period=MINUTE, label=name(f)) for f in functions],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(
                title="Alarms",
                alarms=[*self.alarms, *(alarm for q in queues for alarm in q.alarms)],
                width=24,
            ),
        )
