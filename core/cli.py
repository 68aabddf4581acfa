"""``lsfa`` command line: ``lsfa SUBCOMMAND ...`` (also ``python -m core``).

User errors (bad paths, corrupt files, wrong options) print one line to stderr and exit 2,
never a traceback. Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from core.errors import UserError
from core.progress import Cancelled


def build_parser() -> argparse.ArgumentParser:
    from core.commands import COMMAND_MODULES

    parser = argparse.ArgumentParser(
        prog="lsfa",
        description="LSFA Inspector: multimodal (RGB + 3D) industrial anomaly detection.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"core.commands.{name}")
        except ModuleNotFoundError as exc:  # a subcommand not built yet
            if exc.name != f"core.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs every import
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"lsfa {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"lsfa {args.command}: error: not enough memory for this input "
              "(see LSFA_MEMORY_BUDGET_MB in the README's Reliability section)", file=sys.stderr)
        return 2
    except Cancelled:
        print(f"lsfa {args.command}: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"lsfa {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
