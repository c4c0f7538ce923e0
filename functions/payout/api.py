"""Payout API Lambda: request and read payouts (the daily run is functions/payout/handler.py, a Lambda of its
own, so neither imports what only the other needs)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.api import (
    IdempotencyKey,
    IdempotentOperations,
    build_resolver,
    caller_of,
    guard_request,
    resolve_for_tenant,
)
from functions.common.api_docs import BODY_RULES, KEY_REUSED, create_responses, link, read_responses
from functions.common.observability import logger, metrics, tracer
from functions.payout import domain
from functions.payout.models import PayoutRequest, PayoutResponse
from functions.payout.settings import PayoutApiSettings
from functions.payout.store import DynamoPayoutStore, StepFunctionsSaga, WalletBalances
from functions.sellers.store import DynamoSellerStore

app = build_resolver()


@dataclass(frozen=True)
class ApiPorts:
    store: DynamoPayoutStore
    balances: WalletBalances
    accounts: DynamoSellerStore
    saga: StepFunctionsSaga
    operations: IdempotentOperations


@functools.cache
def _api_ports() -> ApiPorts:
    settings = PayoutApiSettings.from_env()
    return ApiPorts(
        store=DynamoPayoutStore(settings.payouts_table),
        balances=WalletBalances(settings.wallet_table),
        accounts=DynamoSellerStore(settings.sellers_table),
        saga=StepFunctionsSaga(settings.state_machine_arn),
        operations=IdempotentOperations(settings.idempotency_table),
    )


@app.post(
    "/v1/payouts",
    operation_id="create_payout",
    summary="Pay out part of a seller's available balance to their bank account",
    responses=create_responses(
        PayoutResponse,
        "Accepted: the payout is PROCESSING; read it to follow it to PAID or FAILED.",
        links={
            "ReadPayout": link("read_payout", "The payout just requested.", payout_id="$response.body#/payout_id"),
            "ReadSellerWallet": link("read_wallet", "The seller paid out.", seller_id="$response.body#/seller_id"),
        },
        refused=f"{KEY_REUSED} Or `insufficient_funds` (`invalid_request_error`): the amount is more than the "
        "seller's available balance in that currency. Or `payout_account_missing`: the seller has no verified "
        "payout account in that currency (PUT /v1/sellers/{seller_id}/payout-account).",
    ),
)
def create_payout(
    request: Annotated[PayoutRequest, Body(description=BODY_RULES)], key: IdempotencyKey
) -> Response[Any]:
    ports = _api_ports()
    caller = caller_of(app)

    def execute() -> dict[str, Any]:
        payout = domain.request_payout(
            request,
            payout_id=domain.payout_id_for(caller, key),
            store=ports.store,
            balances=ports.balances,
            accounts=ports.accounts,
            saga=ports.saga,
        )
        logger.append_keys(payout_id=payout.payout_id)
        metrics.add_metric(name="PayoutsRequested", unit=MetricUnit.Count, value=1)
        return PayoutResponse.of(payout).model_dump(mode="json")

    return ports.operations.run("create_payout", caller, key, request.model_dump(mode="json"), execute)


@app.get(
    "/v1/payouts/<payout_id>",
    operation_id="read_payout",
    summary="Read a payout: PROCESSING, IN_TRANSIT, PAID or FAILED",
    responses=read_responses("The payout.", not_found="`resource_missing` (`not_found`): no payout with this id."),
)
def read_payout(payout_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,80}$")]) -> PayoutResponse:
    logger.append_keys(payout_id=payout_id)
    return PayoutResponse.of(domain.get_payout(payout_id, store=_api_ports().store))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rejected = guard_request(event)
    if rejected is not None:
        return rejected
    _api_ports().operations.config.register_lambda_context(context)
    return resolve_for_tenant(app, event, context, scoped=False)  # tenants: not scoped yet
