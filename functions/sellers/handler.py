"""Sellers API Lambda: a seller's payout account (PUT replaces it, GET shows it without its numbers)."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.api import build_resolver, caller_of, guard_request, resolve_for_tenant
from functions.common.api_docs import BODY_RULES, link, read_responses, replace_responses
from functions.common.ids import ID_PATTERN
from functions.common.kms_sealer import KmsSecretSealer
from functions.common.observability import logger, metrics, tracer
from functions.sellers import domain
from functions.sellers.models import PayoutAccountRequest, SellerResponse
from functions.sellers.settings import SellersApiSettings
from functions.sellers.store import DynamoSellerStore

app = build_resolver()
# Bank account numbers are long digit strings that may pass the card-number check: their own validators
# check them, and they are sealed before they are stored.
BANK_FIELDS = frozenset({"iban", "account_number", "routing_number"})
SellerId = Annotated[str, Path(pattern=ID_PATTERN)]


@functools.cache
def _ports() -> tuple[DynamoSellerStore, KmsSecretSealer]:
    settings = SellersApiSettings.from_env()
    return DynamoSellerStore(settings.sellers_table), KmsSecretSealer(settings.accounts_key_arn)


@app.put(
    "/v1/sellers/<seller_id>/payout-account",
    operation_id="put_payout_account",
    summary="Set the bank account a seller's payouts go to (a new version; payouts in flight keep theirs)",
    responses=replace_responses(
        "The seller with its payout account as it now is: VERIFIED, numbers shown by their last four characters.",
        links={"ReadSeller": link("read_seller", "The seller just updated.", seller_id="$response.body#/seller_id")},
        conflict="`conflict`: another change of this seller's account was stored at the same moment; send it again.",
    ),
)
def put_payout_account(
    seller_id: SellerId,
    request: Annotated[
        PayoutAccountRequest,
        Body(description=f"{BODY_RULES} (`iban`, `account_number` and `routing_number` are bank numbers, not cards.)"),
    ],
) -> SellerResponse:
    logger.append_keys(seller_id=seller_id)
    store, sealer = _ports()
    account = domain.put_payout_account(seller_id, request, store=store, sealer=sealer, changed_by=caller_of(app))
    logger.info("payout account stored", extra={"version": account.version, "country": account.country})
    metrics.add_metric(name="PayoutAccountsStored", unit=MetricUnit.Count, value=1)
    return SellerResponse.of(account)


@app.get(
    "/v1/sellers/<seller_id>",
    operation_id="read_seller",
    summary="Read a seller and its payout account (last four characters only)",
    responses=read_responses(
        "The seller.", not_found="`resource_missing` (`not_found`): this seller has no payout account."
    ),
)
def read_seller(seller_id: SellerId) -> SellerResponse:
    logger.append_keys(seller_id=seller_id)
    return SellerResponse.of(domain.get_seller(seller_id, store=_ports()[0]))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rejected = guard_request(event, bank_fields=BANK_FIELDS)
    if rejected is not None:
        return rejected
    return resolve_for_tenant(app, event, context, scoped=False)  # tenants: not scoped yet
