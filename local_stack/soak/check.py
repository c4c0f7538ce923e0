"""The soak's end check: is money conserved? Read only through the public API and the PSP simulator's
API (never the tables), once the system is quiet:

- every payment and order is decided (nothing PROCESSING), with the outcome its token calls for;
- every SUCCEEDED order was charged exactly once at the PSP, for its amount, credited and booked once
  (its ledger entries: the amount debited to psp_receivable, credited to the seller less the order's
  application fee and the fee to platform_revenue);
- a FAILED order has no successful charge - or it is an orphan charge, which the system records and
  refunds: counted, not a violation;
- every closed payout matches the PSP's payouts: PAID exactly once, FAILED never paid;
- per seller and currency: available + reserved + paid out == the sum of its SUCCEEDED orders;
- the ledger's trial balance is zero in every currency;
- the last reconciliation of the day's settlement file completed.

Each finding names the ids involved, so other checks (the money auditor's) can be added to the list."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from local_stack.soak.driver import Drive
from local_stack.soak.http import SoakHttp
from local_stack.soak.workload import Checkout, expected_outcome


@dataclass(frozen=True)
class Finding:
    check: str
    ids: tuple[str, ...]
    message: str
    violation: bool = True  # False: counted and shown, but money is accounted for (an orphan charge)

    def __str__(self) -> str:
        return f"{self.check}: {self.message} ({', '.join(self.ids)})"


def _successful(charges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in charges if c["status"] == "succeeded"]


def check_checkout(http: SoakHttp, checkout: Checkout) -> tuple[list[Finding], dict[tuple[str, str], int]]:
    """One checkout's findings, and what its SUCCEEDED orders credited per (seller, currency)."""
    findings: list[Finding] = []
    credited: dict[tuple[str, str], int] = defaultdict(int)
    if checkout.payment_id is None:
        findings.append(Finding("accepted", (checkout.body["checkout_id"],), f"never accepted: {checkout.rejection}"))
        return findings, credited
    payment = http.get(f"/v1/payments/{checkout.payment_id}")
    currency = checkout.body["currency"]
    statuses = {order["status"] for order in payment["orders"]}
    expected_status = (
        "SUCCEEDED" if statuses == {"SUCCEEDED"} else "FAILED" if statuses == {"FAILED"} else "PARTIALLY_FAILED"
    )
    if payment["status"] != expected_status:
        findings.append(
            Finding("payment_status", (checkout.payment_id,), f"{payment['status']} with orders {sorted(statuses)}")
        )
    by_id = {order["payment_order_id"]: order for order in payment["orders"]}
    for requested in checkout.orders:
        order_id = requested["payment_order_id"]
        order = by_id.get(order_id)
        if order is None:
            findings.append(Finding("order_missing", (checkout.payment_id, order_id), "not in the payment"))
            continue
        want_status, want_code = expected_outcome(checkout.token(requested))
        if (order["status"], order["failure_code"]) != (want_status, want_code):
            findings.append(
                Finding(
                    "order_outcome",
                    (order_id,),
                    f"{order['status']}/{order['failure_code']}, the token {checkout.token(requested)} "
                    f"calls for {want_status}/{want_code}",
                )
            )
        charges = http.psp(f"/v1/charges?merchant_reference={order_id}")["data"]
        succeeded = _successful(charges)
        if order["status"] == "SUCCEEDED":
            credited[(order["seller_id"], currency)] += int(order["amount"]) - int(order["application_fee"])
            findings += _check_charged_once(http, order, succeeded)
        elif order["status"] == "FAILED" and succeeded:
            findings.append(
                Finding("orphan_charge", (order_id, succeeded[0]["id"]), "FAILED, charged at the PSP", violation=False)
            )
        elif order["status"] not in ("SUCCEEDED", "FAILED"):
            findings.append(Finding("order_undecided", (order_id,), f"still {order['status']}"))
    return findings, credited


def _check_charged_once(http: SoakHttp, order: dict[str, Any], succeeded: list[dict[str, Any]]) -> list[Finding]:
    order_id = order["payment_order_id"]
    findings = []
    if len(succeeded) != 1:
        findings.append(Finding("charged_once", (order_id,), f"{len(succeeded)} successful PSP charges"))
    elif succeeded[0]["amount"] != order["amount"] or succeeded[0]["id"] != order["psp_reference"]:
        charge = succeeded[0]
        findings.append(
            Finding(
                "charge_matches",
                (order_id, charge["id"]),
                f"charge {charge['amount']} vs order {order['amount']}, reference {order['psp_reference']}",
            )
        )
    if not (order["wallet_updated"] and order["ledger_updated"]):
        findings.append(Finding("credited_and_booked", (order_id,), "wallet or ledger not updated"))
    entries = http.get(f"/v1/ledger/entries?payment_order_id={order_id}")["entries"]
    booked = sorted((e["account"], e["direction"], e["amount"]) for e in entries)
    fee = order["application_fee"]
    expected = [("psp_receivable", "debit", order["amount"])]
    expected += (
        [(f"seller_payable:{order['seller_id']}", "credit", order["amount"] - fee)] if order["amount"] > fee else []
    )
    expected += [("platform_revenue", "credit", fee)] if fee else []
    if booked != sorted(expected):
        findings.append(Finding("booked_once", (order_id,), f"ledger entries {booked}"))
    return findings


def check_payouts(http: SoakHttp, drive: Drive) -> tuple[list[Finding], dict[tuple[str, str], int]]:
    """Each payout against the payout provider's record; what was paid out per (seller, currency)."""
    findings = []
    paid: dict[tuple[str, str], int] = defaultdict(int)
    for payout in drive.payouts:
        status = http.get(f"/v1/payouts/{payout.payout_id}")["status"]
        made = list(http.provider(f"/payouts/v1/payments?reference={payout.payout_id}")["data"])
        paid_out = [p for p in made if p["status"] == "paid"]
        if status == "PAID":
            paid[(payout.seller_id, payout.currency)] += payout.amount
            if [p["amount"] for p in paid_out] != [payout.amount] or len(made) != 1:
                findings.append(Finding("paid_once", (payout.payout_id,), f"PAID, the provider has {made}"))
        elif status == "FAILED":
            if paid_out:
                findings.append(
                    Finding("failed_not_paid", (payout.payout_id,), f"FAILED, the provider paid {paid_out}")
                )
        else:
            findings.append(Finding("payout_undecided", (payout.payout_id,), f"still {status}"))
    return findings, paid


def check_wallets(
    http: SoakHttp, sellers: list[str], credited: dict[tuple[str, str], int], paid: dict[tuple[str, str], int]
) -> list[Finding]:
    findings = []
    for seller in sellers:
        balances = http.get(f"/v1/wallets/{seller}")["balances"]
        currencies = set(balances) | {c for s, c in credited if s == seller}
        for currency in sorted(currencies):
            balance = balances.get(currency, {})
            held = sum(int(balance.get(part, 0)) for part in ("available", "reserved", "pending"))
            expected = credited.get((seller, currency), 0)
            paid_out = paid.get((seller, currency), 0)
            if held + paid_out != expected or int(balance.get("reserved", 0)) != 0:
                findings.append(
                    Finding(
                        "wallet_conserved",
                        (seller, currency),
                        f"wallet {balance} + paid out {paid_out} != credited {expected}",
                    )
                )
    return findings


def check_ledger(http: SoakHttp) -> list[Finding]:
    trial = http.get("/v1/ledger/trial-balance")
    findings = [
        Finding("trial_balance", (currency,), f"debits {sums['debits']} != credits {sums['credits']}")
        for currency, sums in sorted(trial["currencies"].items())
        if sums["debits"] != sums["credits"]
    ]
    if not trial["balanced"] and not findings:
        findings.append(Finding("trial_balance", ("*",), "not balanced"))
    return findings


def check_reconciliation(http: SoakHttp, drive: Drive) -> list[Finding]:
    if not drive.reconciliation_runs:
        return [Finding("reconciled", ("*",), "no reconciliation run")]
    last = drive.reconciliation_runs[-1]
    answer = http.fetch(f"/v1/reconciliations/{last}")
    if answer.status != 200 or answer.body.get("status") != "COMPLETED":
        return [Finding("reconciled", (last,), f"the last run answered {answer.status}: {answer.body}")]
    return []


def soak_findings(http: SoakHttp, drive: Drive, *, concurrency: int = 4) -> list[Finding]:
    """Everything the soak's end check finds; `violation` tells which ones break conservation."""
    findings: list[Finding] = []
    credited: dict[tuple[str, str], int] = defaultdict(int)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="soak-check") as pool:
        for found, credits in pool.map(lambda c: check_checkout(http, c), drive.workload.checkouts):
            findings += found
            for key, amount in credits.items():
                credited[key] += amount
    payout_findings, paid = check_payouts(http, drive)
    findings += payout_findings
    findings += check_wallets(http, drive.workload.sellers, credited, paid)
    findings += check_ledger(http)
    findings += check_reconciliation(http, drive)
    return findings
