"""OpenCV trackers (``cv2.Tracker*`` and ``cv2.legacy.*``): ``init(frame, box)``, ``update(frame) -> (ok, box)``.

OpenCV has no state setter, so write-back means ``init`` again on the refined box: on the same
instance for MIL, CSRT and Nano (verified safe), on a fresh instance from a factory for every other
class (re-initialising KCF crashes OpenCV; legacy trackers refuse a second ``init``).
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Callable, Optional, Tuple

import numpy as np

from ..boxes import as_frame, clip_box, round_box_for_opencv
from .base import RefinedTracker, usable
from .detect import _is_zero_arg, is_opencv_factory, is_opencv_tracker
from .opencv_trackers import (
    NEEDS_MODEL_FILES,
    OPENCV_TRACKERS,
    REINIT_SAME_INSTANCE,
    opencv_factory,
    opencv_tracker,
)

__all__ = ["OpenCVAdapter", "OPENCV_TRACKERS", "opencv_tracker", "opencv_factory"]

REINIT_MODES = ("same", "fresh")
OPENCV_MIN_SIDE = 5  # pixels: cv2.TrackerMIL hangs on 4x4 boxes, CSRT fails on 1x1


def _is_legacy(tracker: Any) -> bool:
    legacy = getattr(sys.modules.get("cv2"), "legacy", None)
    return legacy is not None and isinstance(tracker, legacy.Tracker)


class OpenCVAdapter(RefinedTracker):
    """Refines an OpenCV-style tracker; same ``init(frame, box)`` / ``update(frame) -> (ok, box)``.

    Frames are BGR uint8 (as ``cv2.imread`` gives them). ``base`` is a tracker instance or a
    zero-argument factory (``cv2.TrackerKCF.create``, ``lambda: cv2.TrackerCSRT.create(params)``,
    ``opencv_factory("kcf")``); ``factory=`` gives one next to an instance.

    Extra options:
        factory: builds a fresh base tracker for write-back and for a new ``init``. Derived from
            ``type(tracker).create`` (default params) for OpenCV classes without model files.
        reinit: "same" (``init`` the same instance again) or "fresh" (a new instance from the
            factory). Default: "same" for MIL, CSRT, Nano and non-OpenCV objects, else "fresh".
            Without a factory where one is needed, write-back is off (with a warning).
        as_int: return ``(x, y, w, h)`` as ints (rounded, inside the image) or floats. Default:
            what the base returns (ints for ``cv2.Tracker*``, floats for legacy and others).

    ``update`` returns ``(True, refined box)``; when the base reports ``ok=False`` (or a box
    with no area on the image) it returns the base's answer unchanged and skips refinement.
    """

    auto_write_back = False  # re-init discards the tracker's model: refine the output only

    kind = "opencv"
    default_image_format = "BGR"

    def __init__(
        self,
        base: Any,
        refiner: Any = None,
        *,
        factory: Optional[Callable[[], Any]] = None,
        reinit: Optional[str] = None,
        as_int: Optional[bool] = None,
        **options: Any,
    ) -> None:
        if factory is not None and not callable(factory):
            raise TypeError(f"factory must be a zero-argument callable returning a tracker; got {factory!r}")
        tracker = base
        if is_opencv_factory(base) or (callable(base) and not hasattr(base, "init") and _is_zero_arg(base)):
            factory, tracker = base, self._build(base)
        if not (callable(getattr(tracker, "init", None)) and callable(getattr(tracker, "update", None))):
            raise TypeError(
                f"an OpenCV-style base tracker needs init(frame, box) and update(frame) -> (ok, box); "
                f"{type(tracker).__name__} has no {'init' if not callable(getattr(tracker, 'init', None)) else 'update'}()"
            )
        super().__init__(tracker, refiner, **options)
        cls_name = type(tracker).__name__
        self.legacy = _is_legacy(tracker)
        self.native = is_opencv_tracker(tracker)
        if factory is None and self.native and cls_name not in NEEDS_MODEL_FILES:
            factory = type(tracker).create
        self.factory = factory
        if reinit is None:
            reinit = "same" if (not self.native or (not self.legacy and cls_name in REINIT_SAME_INSTANCE)) else "fresh"
        if reinit not in REINIT_MODES:
            raise ValueError(f"reinit must be 'same' or 'fresh' (or None for the safe default); got {reinit!r}")
        self.reinit = reinit
        self._base_used = False
        self.as_int = (self.native and not self.legacy) if as_int is None else bool(as_int)
        if self.write_back is True and reinit == "fresh" and factory is None:
            warnings.warn(
                f"{cls_name} cannot be re-initialised in place and no factory was given, so refined boxes "
                f"are not written back; pass factory=lambda: <build a new {cls_name}> to enable write-back",
                stacklevel=2,
            )
            self.write_back = False

    @staticmethod
    def _build(factory: Callable[[], Any]) -> Any:
        tracker = factory()
        if tracker is None:
            raise TypeError(f"the tracker factory {factory!r} returned None; it must return a new tracker")
        return tracker

    # ------------------------------------------------------------------ helpers
    def _frame(self, frame: Any) -> np.ndarray:
        f = as_frame(frame)
        return np.repeat(f[:, :, None], 3, axis=2) if f.ndim == 2 else f

    def _base_box(self, box: np.ndarray, hw: Tuple[int, int]) -> Tuple[Any, ...]:
        """The box in the form the base's ``init`` accepts: inside the image; for OpenCV's own
        trackers integers (the new API refuses floats, legacy Boosting crashes the process on them)
        and at least ``OPENCV_MIN_SIDE`` pixels a side (MIL hangs on smaller boxes)."""
        if self.native:
            return round_box_for_opencv(clip_box(box, hw, float(OPENCV_MIN_SIDE)), hw)
        return tuple(float(v) for v in clip_box(box, hw, 1.0))

    def _check_init_box(self, b: np.ndarray, hw: Tuple[int, int]) -> None:
        if not self.native:
            return
        x, y, w, h = round_box_for_opencv(b, hw)
        if w < OPENCV_MIN_SIDE or h < OPENCV_MIN_SIDE:
            raise ValueError(
                f"box {b.tolist()} covers {w}x{h} pixels of the frame; OpenCV's trackers need at least "
                f"{OPENCV_MIN_SIDE}x{OPENCV_MIN_SIDE} (MIL hangs and CSRT fails on smaller boxes): pass a larger box"
            )

    def _call_init(self, tracker: Any, frame: np.ndarray, box: Tuple[Any, ...]) -> Any:
        """The base's ``init``, with OpenCV's own errors turned into one clear ``ValueError``."""
        cv2 = sys.modules.get("cv2")
        error = getattr(cv2, "error", None) if cv2 is not None else None
        if error is None:
            return tracker.init(frame, box)
        try:
            return tracker.init(frame, box)
        except error as e:
            last = [ln for ln in str(e).strip().splitlines() if ln.strip()][-1:] or [""]
            raise ValueError(
                f"{type(tracker).__name__}.init refused the box {tuple(box)} on a "
                f"{frame.shape[1]}x{frame.shape[0]} frame (OpenCV: {last[0].strip()[:160]})"
            ) from None

    def _out(self, box: np.ndarray, hw: Tuple[int, int]) -> Tuple[Any, ...]:
        return round_box_for_opencv(box, hw) if self.as_int else tuple(float(v) for v in box)

    def _init_base(self, frame: np.ndarray, box: Tuple[Any, ...], fresh: bool) -> Any:
        tracker = self._build(self.factory) if fresh else self.base
        ok = self._call_init(tracker, frame, box)
        if ok is False and fresh:  # legacy init refused the box: keep the current instance
            return ok
        self.base = tracker
        return ok

    # ------------------------------------------------------------------ OpenCV interface
    def init(self, frame: Any, box: Any) -> Any:
        """Initialise base tracker and refiner on ``frame`` (BGR) and ``box`` ``(x, y, w, h)``.

        Returns what the base's ``init`` returns (``None`` for ``cv2.Tracker*``, ``bool`` for legacy).
        """
        f, b = self._check_start(frame, box)  # before the base tracker sees them
        f = self._frame(f)
        self._check_init_box(b, f.shape[:2])
        fresh = self._base_used and self.reinit == "fresh" and self.factory is not None
        ok = self._init_base(f, self._base_box(b, f.shape[:2]), fresh)
        self._base_used = True
        self._start(f, b)
        self._initialized = ok is not False
        return ok

    def update(self, frame: Any) -> Tuple[bool, Tuple[Any, ...]]:
        """Track, refine, write back; ``(ok, (x, y, w, h))`` like the base tracker's ``update``."""
        self._require_init("update", "init")
        f = self._frame(self._check_frame(frame))
        out = self.base.update(f)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(
                f"{type(self.base).__name__}.update(frame) must return (ok, box) like OpenCV; got {out!r}. "
                "If it returns just a box (the got10k protocol), pass kind='got10k'"
            )
        ok, box = out
        hw = f.shape[:2]
        if not ok or not usable(box, hw):
            self._skip(box)
            return ok, box
        refined = self._refine(f, box)
        self._write_back(f, refined)
        return True, self._out(refined, hw)

    def _write_back(self, frame: np.ndarray, box: np.ndarray) -> None:
        if self._custom_write_back(box):
            return
        fresh = self.reinit == "fresh"
        if fresh and self.factory is None:
            return
        self._init_base(frame, self._base_box(box, frame.shape[:2]), fresh)
