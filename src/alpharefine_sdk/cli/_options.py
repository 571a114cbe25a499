"""Options that several commands share, spelled and defaulted the same way everywhere."""

from __future__ import annotations

import argparse
import sys

#: ``--write-back`` word -> the library's ``write_back`` value.
WRITE_BACK = {"auto": "auto", "on": True, "off": False}


def add_tracker_opt(p: argparse.ArgumentParser) -> None:
    """``--tracker-opt TRACKER.KEY=VALUE`` (repeatable): a base tracker's parameters."""
    p.add_argument(
        "--tracker-opt",
        action="append",
        default=[],
        metavar="TRACKER.KEY=VALUE",
        help="tracker parameter, e.g. nano.backbone=backbone.onnx nano.neckhead=neckhead.onnx (repeatable)",
    )


def add_weights(p: argparse.ArgumentParser) -> None:
    """``--weights``: anything ``Refiner.from_pretrained`` takes."""
    p.add_argument(
        "--weights",
        default=None,
        metavar="PATH_OR_REPO_ID",
        help="refiner weights: model folder, original *.pth.tar, model name or Hub repo id (default: packaged model)",
    )


def add_quiet(p: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bar (one is drawn only when stderr is a terminal anyway)."""
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar (shown only on a terminal)")


def show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal, and never with ``--quiet`` (logs and CI stay clean)."""
    return not quiet and sys.stderr.isatty()


def add_write_back(p: argparse.ArgumentParser) -> None:
    """``--write-back auto|on|off`` with the library's default (``write_back="auto"``)."""
    p.add_argument(
        "--write-back",
        choices=tuple(WRITE_BACK),
        default="auto",
        help="feed refined boxes back into the base tracker: auto (default, as the library: OpenCV trackers "
        "are not re-initialised, which would discard their model; trackers with a settable state are "
        "updated), on (always, as the original did), off (refine the output only)",
    )
