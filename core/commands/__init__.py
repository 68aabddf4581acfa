"""CLI subcommands. Each module defines ``register(subparsers)``; the handler it sets as
``func`` takes the parsed ``argparse.Namespace`` and returns an exit status.
Heavy imports (torch, faiss) happen inside the handlers so ``lsfa --help`` stays fast."""

COMMAND_MODULES = ["demo_data", "info", "fit", "eval", "score", "watch"]
