"""Which adapter fits a base tracker: detected from its protocol, or named with ``kind=``."""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any, Optional, Type

KINDS = ("opencv", "pysot", "pytracking", "state_list", "got10k", "callable")
ALIASES = {
    "cv2": "opencv",
    "stark": "state_list",
    "ostrack": "state_list",
    "mixformer": "state_list",
    "function": "callable",
}

_CV2_FACTORY = re.compile(r"Tracker\w*[._]create$")

PROTOCOLS = (
    "an OpenCV tracker (init(frame, box) + update(frame) -> (ok, box)) or a zero-argument factory "
    "such as cv2.TrackerKCF.create; a pysot tracker (init + track -> dict); a pytracking/STARK "
    "tracker (initialize + track -> dict); a got10k.trackers.Tracker; or a callable fn(frame) -> box"
)


def _has(obj: Any, *names: str) -> bool:
    return all(callable(getattr(obj, n, None)) for n in names)


def is_opencv_tracker(obj: Any) -> bool:
    """``True`` for instances of ``cv2.Tracker`` or ``cv2.legacy.Tracker`` (no import of cv2)."""
    cv2 = sys.modules.get("cv2")
    if cv2 is None:
        return False
    classes = tuple(
        c
        for c in (getattr(cv2, "Tracker", None), getattr(getattr(cv2, "legacy", None), "Tracker", None))
        if isinstance(c, type)
    )
    return bool(classes) and isinstance(obj, classes)


def is_opencv_factory(obj: Any) -> bool:
    """``True`` for OpenCV's own constructors (``cv2.TrackerKCF.create``, ``cv2.legacy.TrackerKCF_create``)."""
    return inspect.isbuiltin(obj) and bool(_CV2_FACTORY.search(getattr(obj, "__qualname__", "") or ""))


def is_got10k_tracker(obj: Any) -> bool:
    mod = sys.modules.get("got10k.trackers")
    return mod is not None and isinstance(obj, getattr(mod, "Tracker", ()))


def _is_zero_arg(fn: Any) -> bool:
    """A Python callable that can be called with no arguments (a factory)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values())


def normalize_kind(kind: str) -> str:
    k = str(kind).lower().replace("-", "_")
    k = ALIASES.get(k, k)
    if k not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} (or stark/ostrack/mixformer); got {kind!r}")
    return k


def detect_kind(base: Any) -> str:
    """Name the protocol ``base`` follows; ``TypeError`` naming the accepted ones otherwise."""
    if base is None:
        raise TypeError(f"RefinedTracker needs a base tracker; got None. Pass {PROTOCOLS}")
    if isinstance(base, str):
        raise TypeError(
            f"got the string {base!r}, not a tracker; for an OpenCV tracker by name pass "
            f"alpharefine_sdk.adapters.opencv_factory({base!r})"
        )
    if is_opencv_tracker(base) or is_opencv_factory(base):
        return "opencv"
    if isinstance(base, type):
        raise TypeError(
            f"got the class {base.__name__}, not a tracker: pass an instance or a factory "
            f"(e.g. {base.__name__}.create for OpenCV)"
        )
    if is_got10k_tracker(base):
        return "got10k"
    if _has(base, "initialize", "track"):
        if hasattr(base, "state") and not hasattr(base, "pos"):
            return "state_list"
        return "pytracking"
    if _has(base, "init", "track"):
        return "pysot"
    if _has(base, "init", "update"):
        return "opencv"
    if callable(base):
        return "opencv" if _is_zero_arg(base) else "callable"
    raise TypeError(f"cannot wrap a {type(base).__name__}: RefinedTracker accepts {PROTOCOLS}")


def adapter_class(base: Any, kind: Optional[str] = None) -> Type[Any]:
    """The adapter class for ``base`` (``kind`` overrides detection)."""
    k = normalize_kind(kind) if kind is not None else detect_kind(base)
    if k == "opencv":
        from .opencv import OpenCVAdapter as cls
    elif k == "pysot":
        from .pysot import PysotAdapter as cls
    elif k == "pytracking":
        from .pytracking import PytrackingAdapter as cls
    elif k == "state_list":
        from .state_list import StateListAdapter as cls
    elif k == "got10k":
        from .got10k import got10k_adapter_class

        cls = got10k_adapter_class()
    else:
        from .callable import CallableAdapter as cls
    return cls
