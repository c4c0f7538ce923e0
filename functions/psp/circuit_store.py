"""DynamoDB adapter for the PSP circuit's shared state: one small item per circuit (key `circuit`), with a
version for optimistic concurrency and a TTL (`expires_at`), so a circuit nobody used for an hour is gone
and starts closed again."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.common.dynamo import is_condition_failure, table
from functions.psp.breaker import CircuitStoreUnavailable
from functions.psp.circuit import CircuitState

KEY = "circuit"
TTL_ATTRIBUTE = "expires_at"
DEFAULT_TTL_SECONDS = 3600
_FLOATS = ("window_started", "opened_at")


class DynamoCircuitStore:
    def __init__(self, table_name: str, *, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        self.table_name = table_name
        self.ttl_seconds = ttl_seconds

    def read(self, name: str) -> CircuitState:
        try:
            item = table(self.table_name).get_item(Key={KEY: name}, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise CircuitStoreUnavailable(f"reading circuit {name!r}: {type(error).__name__}") from error
        return CircuitState() if item is None else _state(item)

    def replace(self, name: str, state: CircuitState, *, expected_version: int, now: float) -> bool:
        item: dict[str, Any] = {
            KEY: name,
            "status": state.status,
            "successes": state.successes,
            "failures": state.failures,
            "probe_successes": state.probe_successes,
            "version": expected_version + 1,
            TTL_ATTRIBUTE: int(now) + self.ttl_seconds,
        }
        for attribute in _FLOATS:
            value = getattr(state, attribute)
            if value is not None:
                item[attribute] = Decimal(str(value))
        try:
            table(self.table_name).put_item(
                Item=item,
                ConditionExpression="attribute_not_exists(#key) OR version = :expected",
                ExpressionAttributeNames={"#key": KEY},
                ExpressionAttributeValues={":expected": expected_version},
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False  # another execution wrote first
            raise CircuitStoreUnavailable(f"writing circuit {name!r}: {type(error).__name__}") from error
        except BotoCoreError as error:
            raise CircuitStoreUnavailable(f"writing circuit {name!r}: {type(error).__name__}") from error
        return True


def _state(item: dict[str, Any]) -> CircuitState:
    return CircuitState(
        status=item["status"],
        window_started=float(item.get("window_started", 0)),
        successes=int(item.get("successes", 0)),
        failures=int(item.get("failures", 0)),
        opened_at=float(item["opened_at"]) if "opened_at" in item else None,
        probe_successes=int(item.get("probe_successes", 0)),
        version=int(item["version"]),
    )
