"""Fulfilment holds (functions/wallet/holds.py): the wallet's holds worker, which releases a held order's
share from `pending` to `available` once and hands its journal to the ledger, and the hourly sweep that asks
it to release every hold whose period is over, read from the wallet table's due-hold index.

Built in two steps: the holds queue first (the payments API sends fulfilments to it), then, once the pay-in
path and the schedules' failure queue exist, the functions (`connect`)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.wallet.keys import HOLD_DUE_INDEX
from functions.wallet.settings import HoldSweepSettings, WalletHoldsSettings
from infra.constructs.alarms import run_on_schedule
from infra.constructs.function import ServiceFunction
from infra.constructs.pay_in import PayIn, sqs_source, wallet_wait_queue
from infra.constructs.table_access import grant_items


class FulfilmentHolds(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, alarm_topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        # Releases from fulfilments (the payments API) and from the sweep; the worker releases each hold once,
        # and a release that arrived before its order's credit waits here, by age, for the credit.
        self.queue = wallet_wait_queue(self, "WalletHoldsQueue", alarm_topic=alarm_topic)

    def connect(self, *, pay_in: PayIn, schedule_failures: sqs.IQueue, rate: Duration = Duration.hours(1)) -> None:
        """The holds worker and the sweep, on the pay-in path's wallet table and ledger postings queue."""
        self._worker(pay_in)
        self._sweep(pay_in, schedule_failures, rate)

    def _worker(self, pay_in: PayIn) -> None:
        self.worker = ServiceFunction(
            self,
            "WalletHolds",
            handler="functions.wallet.holds_handler.handler",
            settings_model=WalletHoldsSettings,
            service_name="wallet-holds",
            description="Releases each held order's share from pending to available once, then hands its "
            "journal to the ledger.",
            wallet_table=pay_in.wallet_table.table_name,
            ledger_postings_queue_url=pay_in.ledger_postings_queue.queue.queue_url,
            dead_letter_queue_url=self.queue.dlq.queue_url,
        )
        function = self.worker.function
        # The hold's read and its release transaction (Update items only): never Put, Scan, Delete or an index.
        grant_items(pay_in.wallet_table, function, "dynamodb:GetItem", "dynamodb:UpdateItem")
        pay_in.ledger_postings_queue.queue.grant_send_messages(function)
        self.queue.grant_backoff(function)
        function.add_event_source(sqs_source(self.queue.queue))

    def _sweep(self, pay_in: PayIn, schedule_failures: sqs.IQueue, rate: Duration) -> None:
        self.sweep = ServiceFunction(
            self,
            "HoldSweep",
            handler="functions.wallet.holds_handler.sweep_handler",
            settings_model=HoldSweepSettings,
            service_name="wallet-hold-sweep",
            description="Asks the holds worker to release every hold whose period is over (the due-hold index).",
            timeout=Duration.minutes(5),
            wallet_table=pay_in.wallet_table.table_name,
            wallet_holds_queue_url=self.queue.queue.queue_url,
            # One sweep at a time: overlapping sweeps would ask for the same releases twice (harmless, wasted).
            reserved_concurrency=1,
            dead_letter_queue=schedule_failures,
        )
        sweeper = self.sweep.function
        # The due-hold index by name, for Query alone: the sweep reads no item of the table itself.
        grant_items(pay_in.wallet_table, sweeper, query_indexes=[HOLD_DUE_INDEX])
        self.queue.queue.grant_send_messages(sweeper)
        self.schedule = run_on_schedule(
            self,
            "HoldSweepSchedule",
            function=sweeper,
            schedule=events.Schedule.rate(rate),
            description="Release the fulfilment holds whose period is over",
        )
