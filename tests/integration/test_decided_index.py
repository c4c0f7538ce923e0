"""The executor's decisions reach reconciliation's sparse index of succeeded orders (moto, the template's
executor table): written by the executor's store, read back by the reconciliation's order source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3

from functions.common import decided_index
from functions.common.events import ExecuteOrder
from functions.executor.store import DynamoExecutionStore
from functions.psp.models import ChargeResult
from functions.reconciliation.store import DynamoOrderSource
from local_stack.deploy import LocalCloud


def _executor_table(cloud: LocalCloud) -> str:
    return next(
        ref for logical_id, ref in cloud.names_of("AWS::DynamoDB::Table").items() if "ExecutorTable" in logical_id
    )


def _order(n: int) -> ExecuteOrder:
    return ExecuteOrder(
        payment_id="pay_1",
        payment_order_id=f"po_index_{n}",
        seller_id="seller_1",
        buyer_id="buyer_1",
        amount=1000 + n,
        currency="USD",
        payment_method="tok_visa",
    )


def test_only_succeeded_orders_are_on_the_index_and_every_shard_of_the_span_is_read(cloud: LocalCloud) -> None:
    # Given twenty orders decided now: sixteen succeeded, two declined, two pending
    name = _executor_table(cloud)
    executions = DynamoExecutionStore(name)
    start = datetime.now(UTC) - timedelta(seconds=1)
    outcomes = ["succeeded"] * 16 + ["failed"] * 2 + ["pending"] * 2
    for n, status in enumerate(outcomes):
        order = _order(n)
        executions.claim(order)
        executions.decide(
            order.payment_order_id,
            expected="EXECUTING",
            result=ChargeResult(status, f"ch_index_{n}", "card_declined" if status == "failed" else None),  # type: ignore[arg-type]
        )
    end = datetime.now(UTC) + timedelta(seconds=1)

    # Then each succeeded order carries its hour's shard, the others none
    items = {i["payment_order_id"]: i for i in boto3.resource("dynamodb").Table(name).scan()["Items"]}
    for n, status in enumerate(outcomes):
        item = items[f"po_index_{n}"]
        if status == "succeeded":
            assert item[decided_index.ATTRIBUTE] == decided_index.decided_shard(
                item["payment_order_id"], item["decided_at"]
            )
        else:
            assert decided_index.ATTRIBUTE not in item
    assert len({items[f"po_index_{n}"][decided_index.ATTRIBUTE] for n in range(16)}) > 1  # spread over shards

    # And reconciliation reads exactly the succeeded ones back, in pages of at most 100
    pages = list(DynamoOrderSource(name).succeeded_between(start, end))
    found = sorted(o.payment_order_id for page in pages for o in page)
    assert found == sorted(f"po_index_{n}" for n in range(16))
    assert all(
        o.status == "SUCCEEDED" and o.psp_reference == f"ch_index_{o.payment_order_id[9:]}" for p in pages for o in p
    )
    assert list(DynamoOrderSource(name).succeeded_between(end + timedelta(hours=2), end + timedelta(hours=3))) == []
