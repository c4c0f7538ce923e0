"""The soak's workload: N multi-seller checkouts drawn from a seed, with every PSP test token the
simulator knows, in two currencies, and what each order's outcome must be."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from local_stack.psp.charges import DECLINES, SUCCEEDING_TOKENS

# Every token the simulator knows, weighted towards the ordinary case. The three that misbehave (two 5xx
# then a charge, a lost first response, a charge settled later by webhook) still succeed in the end.
TOKEN_WEIGHTS = {
    **dict.fromkeys(sorted(SUCCEEDING_TOKENS), 6),
    **dict.fromkeys(sorted(DECLINES), 2),
    "tok_processing_error": 2,
    "tok_timeout": 2,
    "tok_pending": 3,
}
CURRENCIES = ("USD", "EUR")
MAX_ORDERS_PER_CHECKOUT = 4


def expected_outcome(token: str) -> tuple[str, str | None]:
    """An order's final status and failure code, as the token decides them."""
    if token in DECLINES:
        return "FAILED", DECLINES[token]
    return "SUCCEEDED", None


@dataclass
class Checkout:
    body: dict[str, Any]
    idempotency_key: str
    payment_id: str | None = None
    rejection: str | None = None  # what the API answered if it never accepted the checkout

    @property
    def orders(self) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = self.body["orders"]
        return orders

    def token(self, order: dict[str, Any]) -> str:
        return str(order.get("payment_method") or self.body["payment_method"])


@dataclass
class Workload:
    checkouts: list[Checkout]
    sellers: list[str] = field(default_factory=list)

    @property
    def order_count(self) -> int:
        return sum(len(c.orders) for c in self.checkouts)


def build_workload(seed: int, checkouts: int, *, tag: str) -> Workload:
    """The same seed gives the same checkouts (sellers, amounts, tokens, currencies); `tag` only keeps the
    ids of one run apart from another's on the same stack."""
    draws = random.Random(f"{seed}:workload")
    # Commissions draw from their own stream, so a seed's checkouts are the same as before fees existed.
    fees = random.Random(f"{seed}:fees")
    sellers = [f"seller_{tag}_{i}" for i in range(max(5, checkouts // 4))]
    tokens, weights = list(TOKEN_WEIGHTS), list(TOKEN_WEIGHTS.values())
    built = []
    for number in range(checkouts):
        count = draws.randint(1, MAX_ORDERS_PER_CHECKOUT)
        payment_method = draws.choices(tokens, weights)[0]
        orders = []
        for index, seller in enumerate(draws.sample(sellers, count)):
            order: dict[str, Any] = {
                "payment_order_id": f"po_{tag}_{number}_{index}",
                "seller_id": seller,
                "amount": draws.randint(100, 50_000),
            }
            if draws.random() < 0.5:  # split tender: the order's own token
                order["payment_method"] = draws.choices(tokens, weights)[0]
            if fees.random() < 0.4:  # the marketplace's commission: up to a fifth, sometimes all of it
                order["application_fee"] = (
                    order["amount"] if fees.random() < 0.05 else fees.randint(0, order["amount"] // 5)
                )
            orders.append(order)
        body = {
            "checkout_id": f"co_{tag}_{number}",
            "buyer_id": f"buyer_{tag}_{draws.randrange(checkouts)}",
            "currency": draws.choice(CURRENCIES),
            "payment_method": payment_method,
            "orders": orders,
            "metadata": {"soak_seed": str(seed)},
        }
        built.append(Checkout(body=body, idempotency_key=f"soak-{tag}-{number}"))
    return Workload(checkouts=built, sellers=sellers)
