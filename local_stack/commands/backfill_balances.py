"""`payments backfill-balances`: one-off, for a stack whose ledger and wallets predate balance records.

  payments backfill-balances          against the running local stack
  payments backfill-balances --aws    against the deployed stack, with the caller's AWS credentials

Rebuilds every ledger balance record from the entries (a Scan of the entries table, once) and puts every
wallet balance with money on the payout-due index. Run it while the ledger's consumers are paused (see
docs/DEPLOY.md): a journal booked during the Scan could otherwise be counted twice or not at all."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from functions.ledger.balances import rebuilt, trial_balance_of
from functions.ledger.settings import LedgerApiSettings
from functions.ledger.store import DynamoBalanceStore, DynamoLedgerStore
from functions.wallet.settings import WalletApiSettings
from functions.wallet.store import DynamoWalletStore
from local_stack.commands.environments import deployed_environment, local_environment
from local_stack.stack import STACK_NAME, STATE_FILE

LEDGER_HANDLER = "functions.ledger.api.api_handler"
WALLET_HANDLER = "functions.wallet.api.api_handler"


def register(commands: Any) -> None:
    backfill = commands.add_parser("backfill-balances", help="one-off: build balance records for an older stack")
    backfill.add_argument("--aws", action="store_true", help="the deployed stack, with your AWS credentials")
    backfill.add_argument("--stack", default=STACK_NAME, help="the deployed stack's name (with --aws)")
    backfill.add_argument("--state-file", type=Path, default=STATE_FILE, help="the running local stack's state file")
    backfill.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    def environment(handler: str) -> dict[str, str]:
        return deployed_environment(args.stack, handler) if args.aws else local_environment(args.state_file, handler)

    ledger_env, wallet_env = environment(LEDGER_HANDLER), environment(WALLET_HANDLER)
    os.environ.update(ledger_env)  # the adapters find their endpoint and credentials in the environment
    ledger, wallet = LedgerApiSettings.from_env(ledger_env), WalletApiSettings.from_env(wallet_env)
    records = rebuilt(DynamoLedgerStore(ledger.ledger_table, ledger.balances_table).all_entries())
    DynamoBalanceStore(ledger.balances_table).replace_all(records)
    due = DynamoWalletStore(wallet.wallet_table).mark_due_balances()
    trial = trial_balance_of(records)
    print(json.dumps({"balance_records": len(records), "payout_due": due, "trial_balance": trial.model_dump()}))
    return 0 if trial.balanced else 1
