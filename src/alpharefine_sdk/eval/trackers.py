"""Base trackers for the evaluation by name: the OpenCV ones (built by the adapters' factory) or any
importable ``module:factory`` that returns an OpenCV-protocol tracker (``init(frame_bgr, box)``,
``update(frame_bgr) -> (ok, box)``)."""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple

OPENCV_NAMES = ("mil", "csrt", "kcf", "nano", "vit", "dasiamrpn")


def label(spec: str) -> str:
    """A file-name-safe label for a tracker spec (``pkg.mod:make_tracker`` -> ``make_tracker``)."""
    name = spec.split(":", 1)[1] if ":" in spec else spec
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.split(".")[-1] if ":" in spec else name).strip("_") or "tracker"


def make_factory(spec: str, options: Optional[Mapping[str, Any]] = None) -> Callable[[], Any]:
    """A zero-argument factory of new base trackers for ``spec``.

    ``spec`` is an OpenCV tracker name (``mil``, ``csrt``, ``kcf``, ``nano``, ``vit``, ``dasiamrpn``;
    ``options`` set its ``cv2.Tracker*_Params`` fields, e.g. the model files of the DNN trackers) or
    ``"package.module:factory"`` (called with ``**options`` to make each tracker).
    """
    options = dict(options or {})
    if ":" in spec:
        mod_name, _, attr = spec.partition(":")
        if not mod_name or not attr:
            raise ValueError(f"tracker {spec!r}: write an importable factory as 'package.module:function'")
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as e:
            raise ValueError(f"tracker {spec!r}: cannot import module {mod_name!r} ({e}); is it on PYTHONPATH?") from e
        obj: Any = mod
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise ValueError(f"tracker {spec!r}: module {mod_name!r} has no attribute {attr!r}")
            obj = getattr(obj, part)
        if not callable(obj):
            raise ValueError(f"tracker {spec!r}: {attr} is not callable; it must build a new tracker when called")
        import functools

        return functools.partial(obj, **options) if options else obj
    from ..adapters.opencv_trackers import OPENCV_TRACKERS, opencv_factory

    key = spec.lower()
    if key not in OPENCV_TRACKERS:
        raise ValueError(
            f"unknown tracker {spec!r}; use one of {', '.join(OPENCV_NAMES)} (OpenCV) or an importable 'module:factory'"
        )
    return opencv_factory(key, **options)


def parse_options(items: Iterable[str], trackers: Iterable[str]) -> Dict[str, Dict[str, Any]]:
    """Parse ``NAME.KEY=VALUE`` strings into ``{tracker: {key: value}}`` (numbers and booleans converted)."""
    names = {t: t for t in trackers}
    names.update({label(t): t for t in trackers})
    out: Dict[str, Dict[str, Any]] = {t: {} for t in trackers}
    for item in items:
        m = re.fullmatch(r"([^=.]+(?::[^=]+)?)\.([A-Za-z_]\w*)=(.*)", item)
        if m is None:
            raise ValueError(
                f"--tracker-opt {item!r}: write it as TRACKER.KEY=VALUE, e.g. nano.backbone=path/backbone.onnx"
            )
        name, key, value = m.groups()
        if name not in names:
            raise ValueError(
                f"--tracker-opt {item!r}: {name!r} is not one of the --tracker values ({', '.join(trackers)})"
            )
        out[names[name]][key] = _convert(value)
    return out


def _convert(value: str) -> Any:
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def check_tracker(spec: str, options: Optional[Mapping[str, Any]] = None) -> Tuple[str, Callable[[], Any]]:
    """Validate ``spec`` now (clear errors before any work) and return ``(label, factory)``."""
    return label(spec), make_factory(spec, options)
