"""pytracking trackers (DiMP, PrDiMP, ATOM, ECO, ...): ``initialize(image, info)``, ``track(image, info) -> dict``.

pytracking is not installable from the package index; this adapter only duck-types it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .base import RefinedTracker, usable
from .writeback import has_pytracking_state, has_state_list, write_pytracking, write_state_list


class PytrackingAdapter(RefinedTracker):
    """Refines a pytracking-style tracker; same ``initialize(image, info)`` / ``track(image, info=None)``.

    Frames are RGB uint8 (pytracking's runner converts them). ``track`` returns the base's dict
    with ``'target_bbox'`` replaced by the refined box (clipped, a list of 4 floats), the base box
    as ``'target_bbox_base'``, and ``'segmentation'`` (the mask) only when ``mask=True`` (some
    runners treat that key as a VOS output).

    Write-back is chosen from the tracker's fields after ``initialize``: ``pos`` (cy, cx),
    ``target_sz`` (h, w) and ``target_scale`` for DiMP/ATOM/ECO (see
    :func:`~alpharefine_sdk.adapters.writeback.write_pytracking`; ``centre`` picks the convention,
    "inclusive" = pytracking's ``y + (h-1)/2`` by default, "original" = Alpha-Refine's ``y + h/2``);
    ``state = [x, y, w, h]`` for STARK-like trackers; nothing for others (``writes_back`` says which).
    """

    kind = "pytracking"
    default_image_format = "RGB"

    def __init__(self, base: Any, refiner: Any = None, *, centre: str = "inclusive", **options: Any) -> None:
        for method in ("initialize", "track"):
            if not callable(getattr(base, method, None)):
                raise TypeError(
                    f"a pytracking/STARK base tracker needs initialize(image, info) and track(image, info) -> dict; "
                    f"{type(base).__name__} has no {method}()"
                )
        if centre not in ("inclusive", "original"):
            raise ValueError(f"centre must be 'inclusive' (pytracking) or 'original' (Alpha-Refine); got {centre!r}")
        super().__init__(base, refiner, **options)
        self.centre = centre

    @property
    def writes_back(self) -> Optional[str]:
        """Which state the refined box goes into: "pos/target_sz", "state" or ``None``."""
        if self.write_back is False:
            return None
        if callable(self.write_back):
            return "callable"
        if has_pytracking_state(self.base):
            return "pos/target_sz"
        if has_state_list(self.base):
            return "state"
        return None

    def initialize(self, image: Any, info: Dict[str, Any]) -> Any:
        """Initialise the base tracker and the refiner on ``image`` (RGB) and ``info['init_bbox']``."""
        if not isinstance(info, dict) or "init_bbox" not in info:
            raise TypeError(f"info must be a dict with 'init_bbox': [x, y, w, h]; got {info!r}")
        f, b = self._check_start(image, info["init_bbox"], "info['init_bbox']")  # before the base sees them
        out = self.base.initialize(image, info)
        self._start(f, b)
        self._initialized = True
        return out

    def track(self, image: Any, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Track, refine, write back; returns the base's dict with the refined ``'target_bbox'``."""
        self._require_init("track", "initialize")
        f = self._check_frame(image)
        out = self.base.track(image, info)
        if not isinstance(out, dict) or "target_bbox" not in out:
            raise TypeError(f"{type(self.base).__name__}.track() must return a dict with 'target_bbox'; got {out!r}")
        result = dict(out)
        result["target_bbox_base"] = out["target_bbox"]
        if not usable(out["target_bbox"], f.shape[:2]):
            self._skip(out["target_bbox"])
            return result
        box = self._refine(f, out["target_bbox"])
        if not self._custom_write_back(box):
            self._write_state(box)
        result["target_bbox"] = [float(v) for v in box]
        if self.mask:
            result["segmentation"] = self.last_mask
        return result

    def _write_state(self, box: Any) -> None:
        mode = self.writes_back
        if mode == "pos/target_sz":
            write_pytracking(self.base, box, self.centre)
        elif mode == "state":
            write_state_list(self.base, box)
