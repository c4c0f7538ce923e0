"""Driving the soak through the running local stack: the checkouts, concurrently through the public API,
with payouts and settlement files interleaved at seeded points; then waiting until the system is quiet
(every payment and payout decided, every queue drained, every reconciliation run finished), running the
recovery sweep as the schedule would while it waits, and a last reconciliation of the day's file."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.reconciliation.domain import run_id_for
from local_stack.commands.settle import drop, simulator_file
from local_stack.faults import FaultPlan
from local_stack.lambda_runtime import InvocationError
from local_stack.psp.test_accounts import account_body
from local_stack.soak.http import SoakHttp
from local_stack.soak.workload import Checkout, Workload
from local_stack.stack import LocalStack, aws_clients

log = logging.getLogger("local_stack.soak")
TERMINAL_PAYOUTS = ("PAID", "FAILED")
SWEEP_EVERY_SECONDS = 15.0
MIN_PAYOUT = 100
PAYOUT_PATIENCE_SECONDS = 180.0


@dataclass
class Payout:
    seller_id: str
    amount: int
    currency: str
    payout_id: str


@dataclass
class Drive:
    """What the soak did: the checkouts (with their payment ids), the payouts it asked for, and the
    reconciliation runs of the settlement files it dropped."""

    workload: Workload
    payouts: list[Payout] = field(default_factory=list)
    refused_payouts: list[str] = field(default_factory=list)  # 422 insufficient_funds: legitimate
    reconciliation_runs: list[str] = field(default_factory=list)
    sweeps: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Payments and payouts seen final while waiting for quiet: nothing moves them again, so each later
    # round of the wait asks only about the rest (the end check reads every one of them again).
    settled_payments: set[str] = field(default_factory=set)
    closed_payouts: set[str] = field(default_factory=set)


def _state(stack: LocalStack) -> dict[str, Any]:
    """What `payments settle` reads from a running stack's state file, for the stack in this process."""
    assert stack.cloud is not None
    return {
        "api_url": stack.api_url,
        "api_key": stack.config.api_key,
        "psp_url": stack.psp_url,
        "psp_api_key": stack.config.psp_api_key,
        "aws_endpoint": stack.aws_endpoint,
        "buckets": stack.cloud.names_of("AWS::S3::Bucket"),
    }


def _pay(http: SoakHttp, checkout: Checkout) -> None:
    answer = http.post("/v1/payments", checkout.body, idempotency_key=checkout.idempotency_key)
    if answer.status == 202:
        checkout.payment_id = str(answer.body["payment_id"])
    else:
        checkout.rejection = f"{answer.status} {answer.body}"


def _funded_seller(http: SoakHttp, sellers: list[str], first: int) -> tuple[str, list[tuple[str, int]]] | None:
    """The first seller, from `first` on, with a balance to pay out, and its funded currencies."""
    for offset in range(len(sellers)):
        seller_id = sellers[(first + offset) % len(sellers)]
        balances = http.get(f"/v1/wallets/{seller_id}")["balances"]
        available = [(currency, int(balance["available"])) for currency, balance in sorted(balances.items())]
        funded = [(currency, amount) for currency, amount in available if amount >= 2 * MIN_PAYOUT]
        if funded:
            return seller_id, funded
    return None


def _pay_out(http: SoakHttp, drive: Drive, plan: FaultPlan, first: int, key: str) -> None:
    """Pay out half the available balance of the first seller, from `first` on, who has some (early in a
    run, credits may still be on their way: wait for one, for a while)."""
    deadline = time.monotonic() + PAYOUT_PATIENCE_SECONDS
    while (found := _funded_seller(http, drive.workload.sellers, first)) is None:
        if time.monotonic() > deadline:
            return
        time.sleep(2)
    seller_id, funded = found
    currency, amount = funded[0][0], funded[0][1] // 2
    # Payouts go to a verified account in their currency: the seller sets one first.
    onboarded = http.put(f"/v1/sellers/{seller_id}/payout-account", account_body(seller_id, currency))
    if onboarded.status != 200:
        raise RuntimeError(f"PUT payout-account for {seller_id} answered {onboarded.status}: {onboarded.body}")
    body = {"seller_id": seller_id, "amount": amount, "currency": currency}
    answer = http.post("/v1/payouts", body, idempotency_key=key)
    with drive.lock:
        if answer.status == 202:
            plan.count("payout_interleaved")
            drive.payouts.append(Payout(seller_id, amount, currency, str(answer.body["payout_id"])))
        elif answer.status == 422 and answer.body["error"]["code"] == "insufficient_funds":
            drive.refused_payouts.append(key)
        else:
            raise RuntimeError(f"POST /v1/payouts {body} answered {answer.status}: {answer.body}")


def _settle(stack: LocalStack, drive: Drive) -> str:
    """Drop today's settlement files (as the PSP and the payout provider have them now); the last run id."""
    state = _state(stack)
    day = datetime.now(UTC).date().isoformat()
    # The PSP's file (charges, refunds, disputes), then the payout provider's (payouts).
    for source, key in (("psp", stack.config.psp_api_key), ("payout-provider", stack.config.payout_provider_api_key)):
        name, content = simulator_file(stack.psp_url, key, {"date": [day]}, source=source)
        # Each drop is its own object (a run per object version), even within one second.
        dropped = drop(state, name=f"{len(drive.reconciliation_runs)}-{name}", content=content, day=day, source=source)
        with drive.lock:
            drive.reconciliation_runs.append(run_id_for(dropped))
    return drive.reconciliation_runs[-1]


def drive_checkouts(
    stack: LocalStack, http: SoakHttp, workload: Workload, plan: FaultPlan, *, concurrency: int
) -> Drive:
    drive = Drive(workload=workload)
    total = len(workload.checkouts)
    interleave = "interleave" in plan.kinds
    payouts_after = set(plan.schedule("payouts", max(2, total // 10), total)) if interleave else set()
    settlements_after = set(plan.schedule("settlements", 2, total)) if interleave else set()
    # Payouts and settlement files have their own threads: a payout waiting for a funded seller must not
    # hold up the checkouts that fund it.
    with (
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="soak") as pool,
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="soak-interleave") as side,
    ):
        futures: list[Future[Any]] = []
        for number, checkout in enumerate(workload.checkouts):
            futures.append(pool.submit(_pay, http, checkout))
            if number in payouts_after:
                key = f"soak-payout-{checkout.body['checkout_id']}"
                futures.append(side.submit(_pay_out, http, drive, plan, number, key))
            if number in settlements_after:
                plan.count("settlement_interleaved")
                futures.append(side.submit(_settle, stack, drive))
        for future in futures:
            future.result()
    return drive


def _queues_drained(stack: LocalStack) -> bool:
    """Every queue a function consumes is empty (review queues and DLQs are for people: not waited on)."""
    assert stack.cloud is not None
    sqs = aws_clients(stack.aws_endpoint)("sqs")
    names = [f"ApproximateNumberOfMessages{state}" for state in ("", "NotVisible", "Delayed")]
    for mapping in stack.cloud.event_sources:
        if mapping.kind != "sqs":
            continue
        url = stack.cloud.queue_url_by_arn(mapping.source_arn)
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        if any(int(value) for value in attributes.values()):
            return False
    return True


def _payment_settled(payment: dict[str, Any]) -> bool:
    """Decided, and every SUCCEEDED order credited and booked: a state no later event changes."""
    if payment["status"] == "PROCESSING":
        return False
    for order in payment["orders"]:
        if order["status"] not in ("SUCCEEDED", "FAILED"):
            return False
        if order["status"] == "SUCCEEDED" and not (order["wallet_updated"] and order["ledger_updated"]):
            return False
    return True


def _payments_settled(http: SoakHttp, drive: Drive) -> bool:
    for checkout in drive.workload.checkouts:
        payment_id = checkout.payment_id
        if payment_id is None or payment_id in drive.settled_payments:
            continue
        if not _payment_settled(http.get(f"/v1/payments/{payment_id}")):
            return False
        drive.settled_payments.add(payment_id)
    return True


def _payouts_closed(http: SoakHttp, drive: Drive) -> bool:
    for payout in drive.payouts:
        if payout.payout_id in drive.closed_payouts:
            continue
        if http.get(f"/v1/payouts/{payout.payout_id}")["status"] not in TERMINAL_PAYOUTS:
            return False
        drive.closed_payouts.add(payout.payout_id)
    return True


def _runs_finished(http: SoakHttp, drive: Drive) -> bool:
    for run_id in drive.reconciliation_runs:
        answer = http.api("GET", f"/v1/reconciliations/{run_id}")
        if answer.status != 200 or answer.body.get("status") == "RUNNING":
            return False
    return True


def busy(stack: LocalStack, http: SoakHttp, drive: Drive) -> list[str]:
    """What is not quiet yet (empty: all of it is). One at a time: each later check costs requests."""
    if not _payments_settled(http, drive):
        return ["payments"]
    if not _payouts_closed(http, drive):
        return ["payouts"]
    if not _runs_finished(http, drive):
        return ["reconciliation runs"]
    if not _queues_drained(stack):
        return ["queues"]
    return []


def sweep(stack: LocalStack, drive: Drive) -> None:
    """Run the recovery sweep now, as its schedule does, with the first deadline already passed (the lease
    on orders an attempt may still be charging is the sweep's own and stays)."""
    assert stack.scheduler is not None
    drive.sweeps += 1
    try:
        stack.scheduler.trigger("RecoverySchedule", event={"resolve_after_seconds": 0})
    except InvocationError as error:  # a crash injected into the sweep: the next one runs anyway
        log.info("recovery sweep failed: %s", error)


def wait_until_quiet(stack: LocalStack, http: SoakHttp, drive: Drive, *, timeout: float) -> list[str]:
    """Wait for quiet, sweeping for undecided orders every SWEEP_EVERY_SECONDS; then reconcile the day's
    file once more and wait for that run. What was still busy at `timeout` (empty: it went quiet)."""
    deadline = time.monotonic() + timeout
    next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
    while still := busy(stack, http, drive):
        if time.monotonic() > deadline:
            return still
        if time.monotonic() >= next_sweep:
            sweep(stack, drive)
            next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
        time.sleep(1)
    _settle(stack, drive)
    run_deadline = max(deadline, time.monotonic() + 60)
    while not _runs_finished(http, drive):
        if time.monotonic() > run_deadline:
            return ["the last reconciliation run"]
        time.sleep(1)
    return []
