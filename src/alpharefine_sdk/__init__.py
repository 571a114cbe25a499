"""alpharefine-sdk: plug-and-play box and mask refinement for visual object trackers.

Importing the package is cheap: torch, OpenCV and the optional runtimes load on first use.
"""

from __future__ import annotations

from ._optional import lazy_getattr
from ._version import __version__ as __version__

__all__ = [
    "__version__",
    "Refiner",
    "RefineResult",
    "RefinedTracker",
    "refine_many",
    "Gate",
    "list_models",
    "WeightsError",
    "MissingDependencyError",
]

_LAZY = {
    "Refiner": ("refiner", "Refiner"),
    "refine_many": ("refiner", "refine_many"),
    "RefineResult": ("types", "RefineResult"),
    "RefinedTracker": ("adapters", "RefinedTracker"),
    "Gate": ("gate", "Gate"),
    "list_models": ("weights.resolve", "list_models"),
    "WeightsError": ("errors", "WeightsError"),
    "MissingDependencyError": ("errors", "MissingDependencyError"),
}

__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
