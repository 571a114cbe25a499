"""``alpharefine-sdk`` command line. Each sub-command lives in its own module with
``add_parser(subparsers)``; heavy imports happen inside the command, not here."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

# command name -> module in this package
COMMANDS = {
    "refine": "refine_seq",
    "convert": "convert",
    "eval": "evaluate",
    "track": "track",
    "export": "export",
    "train": "train",
    "vot": "vot",
    "demo": "demo",
}


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="alpharefine-sdk", description="Alpha-Refine box and mask refinement for trackers."
    )
    parser.add_argument("--version", action="version", version=f"alpharefine-sdk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(f".{module}", __name__)
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{module}":
                continue
            raise
        mod.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError, RuntimeError) as e:
        print(f"alpharefine-sdk {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
