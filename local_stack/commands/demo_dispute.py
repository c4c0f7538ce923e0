"""The dispute step of `payments demo`: a charge the buyer's bank disputes, the seller's money held in
`reserved`, then the dispute lost (closed at the PSP simulator) and the money gone to the buyer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from local_stack.psp.simulator import bearer

if TYPE_CHECKING:
    from local_stack.commands.demo import Tour


def show_dispute(tour: Tour) -> bool:
    """Print the dispute's steps; False if one did not happen in time."""
    print("\n== A dispute (chargeback): the buyer's bank takes grace's charge back")
    payment = tour.pay("   a charge made with tok_createDispute", tour.checkout(("grace", 3000, "tok_createDispute")))
    order_id = payment["orders"][0]["payment_order_id"]
    listed = tour.until(f"/v1/disputes?payment_order_id={order_id}", lambda body: body["disputes"])["disputes"]
    if not listed:
        print("the PSP's dispute did not arrive in time")
        return False
    dispute: dict[str, Any] = listed[0]
    print(
        f"charge.dispute.created -> dispute {dispute['dispute_id']} {dispute['status']}: "
        f"amount={dispute['amount']} + PSP dispute fee={dispute['fee']} held; grace's wallet {tour.wallet('grace')}"
    )
    response = tour.http.request(
        "POST",
        f"{tour.state['psp_url']}/v1/disputes/{dispute['psp_dispute_id']}/close",
        headers={**bearer(tour.state["psp_api_key"]), "Content-Type": "application/json"},
        body=json.dumps({"outcome": "lost"}).encode(),
    )
    print(f"the PSP closes it: POST /v1/disputes/{dispute['psp_dispute_id']}/close lost -> {response.status}")
    closed = tour.until(f"/v1/disputes/{dispute['dispute_id']}", lambda body: body["status"] != "OPEN")
    print(f"charge.dispute.closed -> dispute {closed['status']}; grace's wallet {tour.wallet('grace')}")
    return bool(closed["status"] == "LOST")
