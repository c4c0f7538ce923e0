"""`payments`: the local stack and the tools around it."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# One module per subcommand under local_stack/commands, each with register(subparsers).
COMMANDS = ("local", "synth", "settle", "demo", "audit", "backfill_balances", "fuzz", "soak", "ops")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="payments", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"local_stack.commands.{name}").register(subparsers)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
