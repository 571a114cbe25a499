"""Wrap existing trackers so their boxes are refined: ``RefinedTracker(base, refiner)``.

One adapter per host protocol (see ``docs/adapters.md``); ``RefinedTracker`` picks the right one.
Host libraries (OpenCV, got10k) are imported only when used; pysot and pytracking never are.
"""

from __future__ import annotations

from typing import Any

from .base import RefinedTracker
from .detect import KINDS, detect_kind

__all__ = [
    "RefinedTracker",
    "OpenCVAdapter",
    "PysotAdapter",
    "PytrackingAdapter",
    "StateListAdapter",
    "Got10kAdapter",
    "CallableAdapter",
    "OPENCV_TRACKERS",
    "opencv_tracker",
    "opencv_factory",
    "KINDS",
    "detect_kind",
]

_LAZY = {
    "OpenCVAdapter": "opencv",
    "OPENCV_TRACKERS": "opencv_trackers",
    "opencv_tracker": "opencv_trackers",
    "opencv_factory": "opencv_trackers",
    "PysotAdapter": "pysot",
    "PytrackingAdapter": "pytracking",
    "StateListAdapter": "state_list",
    "CallableAdapter": "callable",
    "Got10kAdapter": "got10k",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        if name != "Got10kAdapter":
            globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
