"""pysot trackers (SiamRPN++, SiamMask, SiamRPN-LT): ``init(img, bbox)``, ``track(img) -> dict``.

pysot is not installable from the package index; this adapter only duck-types it and never imports it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .base import RefinedTracker, frame_array, usable
from .writeback import write_pysot


class PysotAdapter(RefinedTracker):
    """Refines a pysot tracker; same ``init(img, bbox)`` and ``track(img) -> dict``.

    Frames are BGR uint8 (pysot's convention). ``track`` returns the base's dict with ``'bbox'``
    replaced by the refined box (clipped to the image, a list of 4 floats), the base box kept as
    ``'bbox_base'``, and ``'mask'`` set to the refiner's mask when ``mask=True`` (this replaces
    SiamMask's own mask). Write-back sets ``center_pos = (x + w/2, y + h/2)`` and
    ``size = (w, h)``; it is skipped while a SiamRPN-LT tracker is in ``longterm_state`` or when
    ``'best_score'`` is below ``min_score`` (writing into a lost state freezes it on a distractor).
    """

    kind = "pysot"
    default_image_format = "BGR"

    def __init__(self, base: Any, refiner: Any = None, *, min_score: Optional[float] = None, **options: Any) -> None:
        for method in ("init", "track"):
            if not callable(getattr(base, method, None)):
                raise TypeError(
                    f"a pysot base tracker needs init(img, bbox) and track(img) -> dict; "
                    f"{type(base).__name__} has no {method}()"
                )
        super().__init__(base, refiner, **options)
        self.min_score = min_score

    def init(self, img: Any, bbox: Any) -> Any:
        """Initialise the base tracker and the refiner on ``img`` (BGR) and ``bbox`` ``[x, y, w, h]``."""
        f = frame_array(img)
        out = self.base.init(img, bbox)
        self._start(f, bbox)
        self._initialized = True
        return out

    def _may_write(self, outputs: Dict[str, Any]) -> bool:
        if getattr(self.base, "longterm_state", False):
            return False
        score = outputs.get("best_score")
        return not (self.min_score is not None and score is not None and float(score) < self.min_score)

    def track(self, img: Any) -> Dict[str, Any]:
        """Track, refine, write back; returns pysot's dict with the refined ``'bbox'``."""
        self._require_init("track", "init")
        f = frame_array(img)
        outputs = self.base.track(img)
        if not isinstance(outputs, dict) or "bbox" not in outputs:
            raise TypeError(
                f"{type(self.base).__name__}.track(img) must return a dict with 'bbox' (pysot); got {outputs!r}"
            )
        result = dict(outputs)
        result["bbox_base"] = outputs["bbox"]
        if not usable(outputs["bbox"], f.shape[:2]):
            self._skip(outputs["bbox"])
            return result
        box = self._refine(f, outputs["bbox"])
        if self._may_write(outputs) and not self._custom_write_back(box):
            write_pysot(self.base, box)
        result["bbox"] = [float(v) for v in box]
        if self.mask:
            result["mask"] = self.last_mask
        return result
