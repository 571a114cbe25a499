"""Options that several commands share, spelled and defaulted the same way everywhere."""

from __future__ import annotations

import argparse

#: ``--write-back`` word -> the library's ``write_back`` value.
WRITE_BACK = {"auto": "auto", "on": True, "off": False}


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
