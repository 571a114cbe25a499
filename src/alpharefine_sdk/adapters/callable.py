"""Any callable ``fn(frame) -> box``: the most general base (a detector, a custom tracker, ...)."""

from __future__ import annotations

from typing import Any, Callable

from .base import RefinedTracker, usable


class CallableAdapter(RefinedTracker):
    """Refines the box of ``fn(frame) -> (x, y, w, h)``.

    Call ``init(frame, box)`` on the first frame (the refiner needs the target's template), then
    ``tracker(frame)`` (or ``tracker.update(frame)``) returns the refined float64 ``(x, y, w, h)``
    clipped to the image. Frames are RGB unless ``image_format="BGR"``. ``fn`` has no state we
    know, so write-back happens only through a ``write_back=callable`` hook. When ``fn`` returns
    ``None`` or a box with no area on the image, that answer is returned unrefined.
    """

    kind = "callable"
    default_image_format = "RGB"

    def __init__(self, base: Callable[[Any], Any], refiner: Any = None, **options: Any) -> None:
        if not callable(base):
            raise TypeError(f"kind='callable' needs a function fn(frame) -> (x, y, w, h); got {type(base).__name__}")
        super().__init__(base, refiner, **options)

    def init(self, frame: Any, box: Any) -> None:
        """Initialise the refiner on the first ``frame`` and the target's ``box``."""
        f, b = self._check_start(frame, box)
        self._start(f, b)
        self._initialized = True

    def update(self, frame: Any) -> Any:
        """Run ``fn(frame)``, refine its box and return the refined ``(x, y, w, h)`` (float64)."""
        self._require_init("update", "init")
        f = self._check_frame(frame)
        box = self.base(frame)
        if box is None or not usable(box, f.shape[:2]):
            self._skip(box)
            return box
        refined = self._refine(f, box)
        self._custom_write_back(refined)
        return refined.copy()

    __call__ = update
