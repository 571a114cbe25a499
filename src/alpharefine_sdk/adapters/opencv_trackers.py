"""Build OpenCV trackers by name on OpenCV 4.x and 5.x, with errors that name the wheel to install.

OpenCV is not a hard dependency: ``pip install "alpharefine-sdk[opencv]"`` (main wheel: MIL, Nano,
Vit, DaSiamRPN) or ``"alpharefine-sdk[contrib]"`` (adds CSRT, KCF and ``cv2.legacy``). Keep only one
OpenCV wheel installed: they all provide the same ``cv2`` module.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, Tuple

from .._optional import require
from ..errors import MissingDependencyError

CONTRIB_FIX = (
    'pip uninstall -y opencv-python opencv-python-headless && pip install "alpharefine-sdk[contrib]" '
    "(the contrib wheel replaces the main one; keep only one OpenCV wheel installed)"
)

# name -> (class name, model-file parameters that must be given, needs the contrib wheel)
_NEW_API: Dict[str, Tuple[str, Tuple[str, ...], bool]] = {
    "mil": ("TrackerMIL", (), False),
    "csrt": ("TrackerCSRT", (), True),
    "kcf": ("TrackerKCF", (), True),
    "nano": ("TrackerNano", ("backbone", "neckhead"), False),
    "vit": ("TrackerVit", ("net",), False),
    "dasiamrpn": ("TrackerDaSiamRPN", ("model", "kernel_cls1", "kernel_r1"), False),
    "goturn": ("TrackerGOTURN", ("modelTxt", "modelBin"), False),
}
_LEGACY = {
    "legacy.boosting": "TrackerBoosting",
    "legacy.csrt": "TrackerCSRT",
    "legacy.kcf": "TrackerKCF",
    "legacy.medianflow": "TrackerMedianFlow",
    "legacy.mil": "TrackerMIL",
    "legacy.mosse": "TrackerMOSSE",
    "legacy.tld": "TrackerTLD",
}

#: Names accepted by :func:`opencv_tracker` (``goturn`` only exists on OpenCV 4.x).
OPENCV_TRACKERS: Tuple[str, ...] = tuple(_NEW_API) + tuple(_LEGACY)

#: OpenCV classes that accept a second ``init`` on the same instance (verified on 4.14 and 5.0).
REINIT_SAME_INSTANCE = frozenset({"TrackerMIL", "TrackerCSRT", "TrackerNano"})
#: OpenCV classes whose ``create()`` needs model files, so no factory can be derived from them.
NEEDS_MODEL_FILES = frozenset({"TrackerNano", "TrackerVit", "TrackerDaSiamRPN", "TrackerGOTURN"})


def _wheel(cv2: Any) -> str:
    return f"OpenCV {cv2.__version__}, {'contrib' if hasattr(cv2, 'legacy') else 'main'} wheel"


def _tracker_class(cv2: Any, name: str) -> Any:
    if name in _LEGACY:
        cls = getattr(getattr(cv2, "legacy", None), _LEGACY[name], None)
        if cls is None:
            raise MissingDependencyError(f"cv2.legacy.{_LEGACY[name]} is not in your {_wheel(cv2)}. Fix: {CONTRIB_FIX}")
        return cls
    cls_name, _, contrib = _NEW_API[name]
    cls = getattr(cv2, cls_name, None)
    if cls is None:
        if name == "goturn":
            raise MissingDependencyError(
                f"cv2.TrackerGOTURN is not in your {_wheel(cv2)}: OpenCV 5 removed it; use OpenCV 4.x or another tracker"
            )
        fix = CONTRIB_FIX if contrib else 'pip install "alpharefine-sdk[opencv]" (or upgrade OpenCV)'
        raise MissingDependencyError(f"cv2.{cls_name} is not in your {_wheel(cv2)}. Fix: {fix}")
    return cls


def _normalize(name: Any) -> str:
    key = str(name).lower().replace("cv2.", "").replace("_create", "").replace("tracker", "")
    if key not in _NEW_API and key not in _LEGACY:
        raise ValueError(f"unknown OpenCV tracker {name!r}; choose one of {', '.join(OPENCV_TRACKERS)}")
    return key


def _prepare(name: Any, options: Dict[str, Any]) -> Tuple[Any, Any]:
    """Check ``name`` and ``options``; return the class and its filled params (``None`` for legacy)."""
    key = _normalize(name)
    cv2 = require("cv2")
    cls = _tracker_class(cv2, key)
    if key in _LEGACY:
        if options:
            raise ValueError(f"opencv_tracker({name!r}) takes no options (legacy trackers are built with defaults)")
        return cls, None
    cls_name, files, _ = _NEW_API[key]
    missing = [f for f in files if not options.get(f)]
    if missing:
        raise ValueError(
            f"opencv_tracker({name!r}) needs its model files: pass "
            + ", ".join(f"{f}='path/to/file.onnx'" for f in missing)
        )
    for f in files:
        if not os.path.isfile(str(options[f])):
            raise FileNotFoundError(f"opencv_tracker({name!r}): {f}={str(options[f])!r} is not a file")
    params = getattr(cv2, f"{cls_name}_Params")()
    for k, v in options.items():
        if not hasattr(params, k):
            valid = sorted(a for a in dir(params) if not a.startswith("_"))
            raise ValueError(f"{cls_name}_Params has no field {k!r}; valid fields: {', '.join(valid)}")
        setattr(params, k, str(v) if k in files else v)
    return cls, params


def opencv_tracker(name: str, **options: Any) -> Any:
    """A new OpenCV tracker by ``name`` (one of :data:`OPENCV_TRACKERS`).

    ``options`` set fields of the tracker's ``cv2.Tracker*_Params``. The DNN trackers need their
    model files as keyword arguments: ``nano`` -> ``backbone=``, ``neckhead=``; ``vit`` -> ``net=``;
    ``dasiamrpn`` -> ``model=``, ``kernel_cls1=``, ``kernel_r1=``; ``goturn`` (4.x) ->
    ``modelTxt=``, ``modelBin=``. Example: ``opencv_tracker("csrt", use_segmentation=False)``.
    A class missing from the installed wheel raises :class:`MissingDependencyError` naming the fix.
    """
    cls, params = _prepare(name, options)
    return cls.create() if params is None else cls.create(params)


def opencv_factory(name: str, **options: Any) -> Callable[[], Any]:
    """A zero-argument factory for :func:`opencv_tracker` (name and options are checked now)."""
    _prepare(name, options)
    return functools.partial(opencv_tracker, name, **options)
