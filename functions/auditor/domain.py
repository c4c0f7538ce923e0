"""The money auditor: checks that money is conserved, from balance records and recent orders.

Pure: every read goes through a port handed in, so the CLI (`payments audit`) and the scheduled Lambda run
the same checks. One run reads O(accounts + recent orders): the ledger's balance records, the wallet's
payout-due index, the executor's indexes of recently decided and still open orders, and the DLQ depths."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from functions.auditor.models import CHECKS, AuditReport, Check, Finding, OrderRecord, WalletBalance
from functions.auditor.refunds import Each, PspRefunds, RefundTotals, check_refunds
from functions.common.clock import iso
from functions.common.ids import deterministic_id
from functions.ledger.accounts import (
    DISPUTE_RESERVE_FORMAT,
    PAYOUT_IN_TRANSIT_FORMAT,
    PLATFORM_REVENUE,
    PSP_RECEIVABLE,
    SELLER_PAYABLE_FORMAT,
    SELLER_PENDING_FORMAT,
    seller_payable,
    seller_pending,
)
from functions.ledger.balances import AccountBalance
from functions.ledger.domain import Entry
from functions.psp.models import ChargeResult

PAYABLE_PREFIX = SELLER_PAYABLE_FORMAT.format("")
IN_TRANSIT_PREFIX = PAYOUT_IN_TRANSIT_FORMAT.format("")
DISPUTE_RESERVE_PREFIX = DISPUTE_RESERVE_FORMAT.format("")
PENDING_PREFIX = SELLER_PENDING_FORMAT.format("")


class LedgerBalances(Protocol):
    def all_balances(self) -> Iterable[AccountBalance]: ...


class Wallets(Protocol):
    def due_sellers(self) -> Iterable[tuple[str, str]]:
        """(seller_id, currency) of every balance on the payout-due index."""

    def balance(self, seller_id: str, currency: str) -> WalletBalance: ...

    def credited(self, seller_id: str, payment_order_id: str) -> bool:
        """Whether the wallet applied this order's credit (its applied-marker exists)."""


class Orders(Protocol):
    def succeeded_between(self, start: datetime, end: datetime) -> Iterable[OrderRecord]: ...

    def failed_between(self, start: datetime, end: datetime) -> Iterable[OrderRecord]: ...

    def open_before(self, cutoff: datetime) -> Iterable[OrderRecord]:
        """Orders still EXECUTING or PENDING that opened before `cutoff`."""

    def order(self, payment_order_id: str) -> OrderRecord | None: ...


class Journals(Protocol):
    def by_payment_order(self, payment_order_id: str) -> Sequence[Entry]: ...


class ReadOnce:
    """An order's journal entries read once per run: the charge check and the first commission check share
    the read (a recheck after a pause reads afresh, from the port itself)."""

    def __init__(self, journals: Journals) -> None:
        self.journals = journals
        self._entries: dict[str, Sequence[Entry]] = {}

    def by_payment_order(self, payment_order_id: str) -> Sequence[Entry]:
        if payment_order_id not in self._entries:
            self._entries[payment_order_id] = self.journals.by_payment_order(payment_order_id)
        return self._entries[payment_order_id]


class Charges(Protocol):
    def charge_by_idempotency_key(self, idempotency_key: str) -> ChargeResult | None: ...


class Refunds(RefundTotals, Protocol):
    def orders_refunded_between(self, start: datetime, end: datetime) -> Iterable[str]:
        """The payment_order_ids of refunds that SUCCEEDED or FAILED (last changed) in [start, end]."""


class DeadLetterQueues(Protocol):
    def depths(self) -> dict[str, int]:
        """Messages held (visible or in flight) per dead-letter queue name."""


class Ports(Protocol):
    @property
    def balances(self) -> LedgerBalances: ...
    @property
    def wallets(self) -> Wallets: ...
    @property
    def orders(self) -> Orders: ...
    @property
    def journals(self) -> Journals: ...
    @property
    def charges(self) -> Charges: ...
    @property
    def dead_letters(self) -> DeadLetterQueues: ...
    @property
    def refunds(self) -> Refunds: ...
    @property
    def psp_refunds(self) -> PspRefunds: ...


_LEDGER_SLOTS = ((PAYABLE_PREFIX, 0), (IN_TRANSIT_PREFIX, 1), (DISPUTE_RESERVE_PREFIX, 2), (PENDING_PREFIX, 3))


def _wallet_vs_ledger(
    ports: Ports, records: list[AccountBalance]
) -> dict[tuple[str, str], tuple[WalletBalance, list[int]]]:
    """(seller, currency) -> (the wallet, [payable, in transit, dispute reserve, pending]) for every pair
    whose buckets differ: available == seller_payable, reserved == payout_in_transit + dispute_reserve,
    pending == seller_pending."""
    ledger: dict[tuple[str, str], list[int]] = {}
    for record in records:
        for prefix, slot in _LEDGER_SLOTS:
            if record.account.startswith(prefix):
                pair = (record.account.removeprefix(prefix), record.currency)
                ledger.setdefault(pair, [0, 0, 0, 0])[slot] = record.credit_balance
    pairs = set(ledger) | set(ports.wallets.due_sellers())
    differing = {}
    for seller_id, currency in sorted(pairs):
        wallet = ports.wallets.balance(seller_id, currency)
        accounts = ledger.get((seller_id, currency), [0, 0, 0, 0])
        payable, in_transit, disputed, pending = accounts
        if (wallet.available, wallet.reserved, wallet.pending) != (payable, in_transit + disputed, pending):
            differing[(seller_id, currency)] = (wallet, accounts)
    return differing


def check_wallets(ports: Ports, *, pause: Callable[[], None]) -> list[Finding]:
    """Every seller's wallet equals their ledger accounts, bucket by bucket. A pair that differs is read
    again after a pause: a credit, payout or dispute between the wallet's write and the ledger's is in
    flight, not lost."""
    differing = _wallet_vs_ledger(ports, list(ports.balances.all_balances()))
    if differing:
        pause()
        again = _wallet_vs_ledger(ports, list(ports.balances.all_balances()))
        differing = {pair: values for pair, values in again.items() if pair in differing}
    return [
        Finding(
            check="wallet_matches_ledger",
            message=(
                f"wallet available {wallet.available} / reserved {wallet.reserved} / pending {wallet.pending}, "
                f"ledger {seller_payable(seller_id)} {payable} / payout in transit {in_transit} "
                f"+ dispute reserve {disputed} / {seller_pending(seller_id)} {pending}"
            ),
            ids={"seller_id": seller_id, "currency": currency},
        )
        for (seller_id, currency), (wallet, [payable, in_transit, disputed, pending]) in differing.items()
    ]


def check_trial_balance(records: Iterable[AccountBalance]) -> list[Finding]:
    totals: dict[str, list[int]] = {}
    for record in records:
        bucket = totals.setdefault(record.currency, [0, 0])
        bucket[0] += record.debits
        bucket[1] += record.credits
    return [
        Finding(
            check="trial_balance_zero",
            message=f"debits {debits} != credits {credits}",
            ids={"currency": currency},
        )
        for currency, (debits, credits) in sorted(totals.items())
        if debits != credits
    ]


def _order_ids(order: OrderRecord) -> dict[str, str]:
    return {"payment_order_id": order.payment_order_id, "payment_id": order.payment_id, "seller_id": order.seller_id}


def _charge_lines(order: OrderRecord) -> set[tuple[str, str, int]]:
    """The charge journal an order must have: the PSP owes the amount, the seller is owed its share and the
    platform its commission (a zero line is left out)."""
    lines = {(PSP_RECEIVABLE, "debit", order.amount)}
    if order.amount - order.application_fee:
        owed = seller_pending if order.hold == "until_fulfilled" else seller_payable  # a held share waits
        lines.add((owed(order.seller_id), "credit", order.amount - order.application_fee))
    if order.application_fee:
        lines.add((PLATFORM_REVENUE, "credit", order.application_fee))
    return lines


def check_succeeded(order: OrderRecord, ports: Ports, journals: Journals | None = None) -> list[Finding]:
    """One successful PSP charge (the PSP keeps one per idempotency key: the order id), one wallet credit,
    one charge journal of the order's amount, split between the seller and the platform's commission."""
    problems: list[str] = []
    charge = ports.charges.charge_by_idempotency_key(order.payment_order_id)
    if charge is None or charge.status != "succeeded":
        problems.append(f"no successful PSP charge (PSP: {charge.status if charge else 'none'})")
    elif charge.psp_reference != order.psp_reference:
        problems.append(f"PSP charge {charge.psp_reference} is not the order's {order.psp_reference}")
    if not ports.wallets.credited(order.seller_id, order.payment_order_id):
        problems.append("no wallet credit")
    journal_id = deterministic_id("jr", "charge", order.payment_order_id)
    entries = (journals or ports.journals).by_payment_order(order.payment_order_id)
    lines = [(e.account, e.direction, e.amount) for e in entries if e.journal_id == journal_id]
    expected = _charge_lines(order)
    if len(lines) != len(expected) or set(lines) != expected:
        problems.append(
            f"charge journal {journal_id} is {sorted(lines)}, not {sorted(expected)} "
            f"(amount {order.amount}, application fee {order.application_fee})"
        )
    return [Finding(check="succeeded_orders_complete", message=problem, ids=_order_ids(order)) for problem in problems]


def _commission_kept(order: OrderRecord, journals: Journals) -> int | None:
    """What the order's journals leave platform_revenue, when that is outside 0..the order's fee."""
    entries = journals.by_payment_order(order.payment_order_id)
    kept = sum(e.amount if e.direction == "credit" else -e.amount for e in entries if e.account == PLATFORM_REVENUE)
    return None if 0 <= kept <= order.application_fee else kept


def check_commissions(
    orders: Sequence[OrderRecord], ports: Ports, *, pause: Callable[[], None], first_reads: Journals | None = None
) -> list[Finding]:
    """What the platform keeps of each order's commission (the charge's fee less what refunds gave back) lies
    within the fee: never negative, never more. A refund's restore can be booked before its debit (they
    travel as two messages) and lift it above the fee for a moment: an order outside is read again after
    a pause before it is reported."""
    outside = [o for o in orders if _commission_kept(o, first_reads or ports.journals) is not None]
    if outside:
        pause()
    findings = []
    for order in outside:
        kept = _commission_kept(order, ports.journals)
        if kept is not None:
            findings.append(
                Finding(
                    check="commission_within_fee",
                    message=f"the order's journals leave {PLATFORM_REVENUE} {kept}, outside 0..{order.application_fee}",
                    ids=_order_ids(order),
                )
            )
    return findings


def check_failed(order: OrderRecord, ports: Ports) -> list[Finding]:
    """A failed order has no successful charge at the PSP, unless it is a recorded orphan charge."""
    charge = ports.charges.charge_by_idempotency_key(order.payment_order_id)
    if charge is None or charge.status != "succeeded" or order.orphan_psp_reference is not None:
        return []
    return [
        Finding(
            check="failed_orders_uncharged",
            message=f"the PSP charged {charge.psp_reference} and no orphan charge is recorded",
            ids={**_order_ids(order), "psp_reference": str(charge.psp_reference)},
        )
    ]


def check_open(orders: Iterable[OrderRecord]) -> list[Finding]:
    return [
        Finding(
            check="processing_past_deadline",
            message=f"{order.status} since {order.open_since}",
            ids=_order_ids(order),
        )
        for order in orders
    ]


def check_dead_letters(depths: dict[str, int]) -> list[Finding]:
    return [
        Finding(check="dead_letter_queues_empty", message=f"{count} messages", ids={"queue": name})
        for name, count in sorted(depths.items())
        if count > 0
    ]


_T = TypeVar("_T")


def _flat(lists: Iterable[list[_T]]) -> list[_T]:
    return [item for found in lists for item in found]


def refunded_later(ports: Ports, start: datetime, end: datetime, *, seen: set[str]) -> list[OrderRecord]:
    """The orders, beyond `seen`, whose refunds were decided in the window: an order refunded long after it
    was charged has its refunds and commission checked again in the window its refund was decided in."""
    found = []
    for payment_order_id in dict.fromkeys(ports.refunds.orders_refunded_between(start, end)):
        record = None if payment_order_id in seen else ports.orders.order(payment_order_id)
        if record is not None and (record.status == "SUCCEEDED" or record.orphan_psp_reference is not None):
            found.append(record)
    return found


def audit(
    ports: Ports,
    *,
    now: datetime,
    window: timedelta,
    settle: timedelta,
    processing_deadline: timedelta,
    pause: Callable[[], None],
    each: Each = map,
) -> AuditReport:
    """Run every check. Orders are those decided in [now - settle - window, now - settle]: `settle` gives
    the asynchronous credit and journal of a just-decided order time to land. `each` applies a per-order
    check to every order, in order (a thread pool's `map` overlaps their reads; the checks share nothing but
    the run's read-once journals)."""
    end = now - settle
    start = end - window
    findings = check_wallets(ports, pause=pause)
    findings += check_trial_balance(ports.balances.all_balances())
    first_reads = ReadOnce(ports.journals)
    succeeded = list(ports.orders.succeeded_between(start, end))
    failed = list(ports.orders.failed_between(start, end))
    findings += _flat(each(lambda order: check_succeeded(order, ports, first_reads), succeeded))
    findings += _flat(each(lambda order: check_failed(order, ports), failed))
    refundable = succeeded + [order for order in failed if order.orphan_psp_reference is not None]
    refundable += refunded_later(ports, start, end, seen={o.payment_order_id for o in refundable})
    findings += check_commissions(
        [o for o in refundable if o.status == "SUCCEEDED"], ports, pause=pause, first_reads=first_reads
    )
    findings += check_refunds(refundable, ours=ports.refunds, psp=ports.psp_refunds, pause=pause, each=each)
    checked = len(succeeded) + len(failed)
    findings += check_open(ports.orders.open_before(now - processing_deadline))
    findings += check_dead_letters(ports.dead_letters.depths())
    violations: dict[Check, int] = {check: 0 for check in CHECKS}
    for finding in findings:
        violations[finding.check] += 1
    return AuditReport(
        started_at=iso(now),
        window_start=iso(start),
        window_end=iso(end),
        orders_checked=checked,
        violations=violations,
        findings=findings,
    )
