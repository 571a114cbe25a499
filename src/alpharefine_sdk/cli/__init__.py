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


def _one_line(e: BaseException) -> str:
    """The exception's message on one line (OpenCV's errors span several)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = " ".join(lines) if len(lines) <= 3 else lines[-1]
    return text or type(e).__name__


def _is_opencv_error(e: BaseException) -> bool:
    cv2 = sys.modules.get("cv2")
    return cv2 is not None and isinstance(e, getattr(cv2, "error", ()))


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command. Exit status: 0 success, 1 a runtime failure (one line on stderr), 2 bad
    usage (argparse's message), 130 interrupted. ``--debug`` (anywhere) shows the traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a command fails")
    args = parser.parse_args(argv)
    prefix = f"alpharefine-sdk {args.command}: error:"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"alpharefine-sdk {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        if debug:
            raise
        print(f"{prefix} out of memory; try fewer --workers, smaller inputs or --max-frames", file=sys.stderr)
        return 1
    except Exception as e:
        if debug:
            raise
        if isinstance(e, (ValueError, OSError, ImportError, RuntimeError)) or _is_opencv_error(e):
            where = "OpenCV: " if _is_opencv_error(e) else ""
            print(f"{prefix} {where}{_one_line(e)}", file=sys.stderr)
        else:  # not anticipated: still one line, the traceback is one flag away
            print(
                f"{prefix} {type(e).__name__}: {_one_line(e)} (run again with --debug for the traceback)",
                file=sys.stderr,
            )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
