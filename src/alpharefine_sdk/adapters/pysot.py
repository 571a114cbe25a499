"""pysot trackers (SiamRPN++, SiamMask, SiamRPN-LT): ``init(img, bbox)``, ``track(img) -> dict``.

pysot is not installable from the package index; this adapter only duck-types it and never imports it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .base import RefinedTracker, usable
from .writeback import write_pysot


class PysotAdapter(RefinedTracker):
    """Refines a pysot tracker; same ``init(img, bbox)`` and ``track(img) -> dict``.

    Frames are BGR uint8 (pysot's convention). ``track`` returns the base's dict with ``'bbox'``
    replaced by the refined box (clipped to the image, a list of 4 floats), the base box kept as
    ``'bbox_base'``, and ``'mask'`` set to the refiner's mask when ``mask=True`` (this replaces
    SiamMask's own mask; its ``'polygon'``, which pysot's VOT runner reads, is then recomputed from
    the refined mask in the same form, SiamMask's own kept as ``'polygon_base'``). Write-back sets
    ``center_pos = (x + w/2, y + h/2)`` and
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
        f, b = self._check_start(img, bbox, "bbox")  # before the base tracker sees them
        out = self.base.init(img, bbox)
        self._start(f, b)
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
        f = self._check_frame(img)
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
            if "polygon" in outputs and self.last_mask is not None:
                result["polygon_base"] = outputs["polygon"]
                result["polygon"] = mask_polygon(self.last_mask, box, len(outputs["polygon"]))
        return result


def mask_polygon(mask: Any, box: Any, n_values: int = 8) -> List[float]:
    """SiamMask's ``'polygon'`` from a probability mask: the rotated rectangle around the largest
    region of ``mask > 0.5`` as 8 values ``x1, y1, ..., x4, y4`` (SiamMask's VOT form), or its upright
    ``x, y, w, h`` when ``n_values`` is 4. An empty mask gives the corners of ``box``."""
    import numpy as np

    from .._optional import require

    cv2 = require("cv2")
    binary = (np.asarray(mask) > 0.5).astype(np.uint8)
    contours = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[-2]
    if contours:
        points = max(contours, key=cv2.contourArea).reshape(-1, 2)
        if n_values == 4:
            return [float(v) for v in cv2.boundingRect(points)]
        return [float(v) for v in np.asarray(cv2.boxPoints(cv2.minAreaRect(points))).reshape(-1)]
    x, y, w, h = (float(v) for v in box)
    if n_values == 4:
        return [x, y, w, h]
    return [x, y, x + w, y, x + w, y + h, x, y + h]
