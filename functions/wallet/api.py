"""Wallet read API: a seller's balances per currency."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.api import build_resolver, resolve_for_tenant, tenant_of
from functions.common.api_docs import read_responses
from functions.common.ids import ID_PATTERN
from functions.common.observability import logger, tracer
from functions.common.tenants import scoped_id
from functions.wallet import domain
from functions.wallet.settings import WalletApiSettings
from functions.wallet.store import DynamoWalletStore

app = build_resolver()


@dataclass(frozen=True)
class ApiPorts:
    store: DynamoWalletStore


@functools.cache
def _api_ports() -> ApiPorts:
    return ApiPorts(store=DynamoWalletStore(WalletApiSettings.from_env().wallet_table))


@app.get(
    "/v1/wallets/<seller_id>",
    operation_id="read_wallet",
    summary="A seller's balances per currency",
    responses=read_responses("The seller's balances per currency; a seller with no money yet has none."),
)
def read_wallet(seller_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> domain.WalletView:
    return domain.wallet_view(scoped_id(tenant_of(app), seller_id), store=_api_ports().store)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve_for_tenant(app, event, context)
