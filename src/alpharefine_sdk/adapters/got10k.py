"""The got10k toolkit protocol: ``init(image, box)``, ``update(image) -> box``, PIL RGB images.

The adapter is itself a ``got10k.trackers.Tracker`` (so ``experiment.run(tracker)`` and
``tracker.track(img_files, box)`` work); the class is built on first use so that importing
:mod:`alpharefine_sdk.adapters` does not import got10k (and matplotlib).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._optional import require
from .base import RefinedTracker, usable
from .writeback import write_known_state

_CLASS: Optional[type] = None


class Got10kMixin(RefinedTracker):
    """Refines a got10k-protocol tracker; same ``init(image, box)`` / ``update(image) -> box``.

    Images are PIL (or numpy) RGB, as ``Tracker.track`` opens them. ``update`` returns the refined
    box, clipped to the image, as a float64 numpy ``[x, y, w, h]``. got10k has no state setter:
    write-back goes into a known state layout of the base tracker when it has one (pytracking
    ``pos``/``target_sz``, pysot ``center_pos``/``size``, or ``state``), or through a
    ``write_back=callable`` hook; otherwise only the output is refined.
    The tracker's ``name`` is the base's with ``_AR`` appended (or ``name=``).
    """

    kind = "got10k"
    default_image_format = "RGB"

    def __init__(self, base: Any, refiner: Any = None, *, name: Optional[str] = None, **options: Any) -> None:
        for method in ("init", "update"):
            if not callable(getattr(base, method, None)):
                raise TypeError(
                    f"a got10k base tracker needs init(image, box) and update(image) -> box; "
                    f"{type(base).__name__} has no {method}()"
                )
        super().__init__(base, refiner, **options)
        self.name = name or f"{getattr(base, 'name', type(base).__name__)}_AR"
        self.is_deterministic = bool(getattr(base, "is_deterministic", False))

    def init(self, image: Any, box: Any) -> None:
        """Initialise the base tracker and the refiner on ``image`` (PIL or numpy RGB) and ``box``."""
        f, b = self._check_start(image, box)  # before the base tracker sees them
        self.base.init(image, box)
        self._start(f, b)
        self._initialized = True

    def update(self, image: Any) -> np.ndarray:
        """Track, refine, write back; returns the refined ``[x, y, w, h]`` (float64)."""
        self._require_init("update", "init")
        f = self._check_frame(image)
        box = self.base.update(image)
        if not usable(box, f.shape[:2]):
            self._skip(box)
            return np.asarray(box, dtype=np.float64).reshape(4) if box is not None else box
        refined = self._refine(f, box)
        if not self._custom_write_back(refined):
            write_known_state(self.base, refined)
        return refined.copy()


def got10k_adapter_class() -> type:
    """``Got10kAdapter``: :class:`Got10kMixin` that is also a ``got10k.trackers.Tracker``."""
    global _CLASS
    if _CLASS is None:
        Tracker = require("got10k.trackers").Tracker

        class Got10kAdapter(Got10kMixin, Tracker):
            __doc__ = Got10kMixin.__doc__

        Got10kAdapter.__module__ = __name__
        _CLASS = Got10kAdapter
    return _CLASS


def __getattr__(name: str) -> Any:
    if name == "Got10kAdapter":
        return got10k_adapter_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
