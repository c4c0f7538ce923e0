"""`payments` subcommands: each module here has `register(subparsers)` that adds its command."""
