"""The do-no-harm gate: keep the base tracker's box when the refined box disagrees too much with it.

A refiner is a local regressor: when the base box is already good, a large change is more likely
an error than a fix, and when the base box has left the target, the refiner cannot recover it.
``Gate`` accepts a refined box only if it overlaps the input box enough and its area stays within
a band around the input's; optionally (``max_iou < 1``) it also ignores changes so small that they
are within the refiner's own noise (a near-perfect base box is then kept as it is). ``Refiner`` applies ``refiner.gate`` and marks ``RefineResult.gated``::

    refiner = Refiner.from_pretrained(..., gate=Gate())     # or refiner.gate = Gate(min_iou=0.6)

Everywhere a ``gate`` argument is taken it means the same (:func:`resolve_gate`): ``"auto"`` (the
default) is the gate the model's config recommends, ``None`` is no gate, a :class:`Gate` is that gate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence, Tuple, Union

import numpy as np

from .boxes import iou, is_usable


# Chosen with scripts/choose_gate.py on the 5 validation sequences of the default model
# (mnv2-shared-v2; camel, drift-straight, hike, boat1, person12_1; jittered ground truth at three
# levels and CSRT's boxes): the strictest gate within 0.001 mean IoU of the best of 282. Changes
# smaller than IoU 0.9 are within the refiner's own noise on near-perfect boxes; tighter lower
# bounds (min_iou 0.3+, area 0.5..2) reject more good corrections of large errors than bad ones.
class GateLike(Protocol):
    """Anything with ``accept(input_box, refined_box) -> bool`` can be a gate."""

    def accept(self, input_box: Any, refined_box: Any) -> bool: ...


#: What a ``gate`` argument takes: ``"auto"``, ``None`` or a gate object (see :func:`resolve_gate`).
GateArg = Union[str, None, GateLike]

DEFAULT_MIN_IOU = 0.1
DEFAULT_AREA_RATIO = (0.25, 4.0)
DEFAULT_MAX_IOU = 0.9


@dataclass(frozen=True)
class Gate:
    """Accept a refined box when ``IoU(refined, input) >= min_iou``,
    ``area(refined) / area(input)`` lies in ``area_ratio`` (inclusive) and, if ``max_iou < 1``,
    ``IoU(refined, input) <= max_iou``.

    Args:
        min_iou: in [0, 1]; 0 disables the overlap test.
        area_ratio: ``(low, high)`` with ``0 <= low <= 1 <= high``; ``(0, inf)`` disables it.
        max_iou: in [min_iou, 1]; changes smaller than this (higher IoU) keep the input box.
            1 disables it.
        score_margin: for models with a learned confidence (``RefineResult.score``): keep the input
            box when its predicted IoU exceeds the refined box's by more than this (may be
            negative); ``None`` ignores the scores.
    """

    min_iou: float = DEFAULT_MIN_IOU
    area_ratio: Sequence[float] = DEFAULT_AREA_RATIO
    max_iou: float = DEFAULT_MAX_IOU
    score_margin: Optional[float] = None

    def __post_init__(self) -> None:
        if not isinstance(self.min_iou, (int, float)) or not 0.0 <= float(self.min_iou) <= 1.0:
            raise ValueError(f"min_iou must be a number in [0, 1]; got {self.min_iou!r}")
        try:
            lo, hi = (float(v) for v in self.area_ratio)
        except (TypeError, ValueError):
            raise ValueError(f"area_ratio must be (low, high); got {self.area_ratio!r}") from None
        if not (0.0 <= lo <= 1.0 <= hi) or math.isnan(hi):
            raise ValueError(f"area_ratio must satisfy 0 <= low <= 1 <= high; got ({lo}, {hi})")
        object.__setattr__(self, "area_ratio", (lo, hi))
        if not isinstance(self.max_iou, (int, float)) or not float(self.min_iou) <= float(self.max_iou) <= 1.0:
            raise ValueError(
                f"max_iou must be a number in [min_iou, 1]; got {self.max_iou!r} with min_iou {self.min_iou!r} "
                "(pass max_iou=1.0 to turn the dead band off)"
            )
        if self.score_margin is not None and (
            not isinstance(self.score_margin, (int, float)) or not -1.0 <= float(self.score_margin) <= 1.0
        ):
            raise ValueError(f"score_margin must be None or a number in [-1, 1]; got {self.score_margin!r}")

    def prefers_input(self, scores: Optional[Tuple[float, float]]) -> bool:
        """True when the model's predicted IoUs ``(refined, input)`` favour the input box by more than
        ``score_margin`` (never without scores or without a margin)."""
        if scores is None or self.score_margin is None:
            return False
        return float(scores[1]) - float(scores[0]) > float(self.score_margin)

    def accept(self, input_box: Any, refined_box: Any, scores: Optional[Tuple[float, float]] = None) -> bool:
        """True to use ``refined_box``, False to keep ``input_box`` (both ``(x, y, w, h)``).

        ``scores``: the model's predicted IoUs ``(refined, input)`` when it has them.
        """
        if self.prefers_input(scores):
            return False
        if not (is_usable(input_box) and is_usable(refined_box)):
            return False
        a = np.asarray(input_box, dtype=np.float64).reshape(4)
        b = np.asarray(refined_box, dtype=np.float64).reshape(4)
        ratio = (b[2] * b[3]) / (a[2] * a[3])
        lo, hi = self.area_ratio
        if not lo <= ratio <= hi:
            return False
        if self.min_iou <= 0 and self.max_iou >= 1:
            return True
        o = iou(a, b)
        return o >= self.min_iou and (self.max_iou >= 1 or o <= self.max_iou)


def gate_from_config(config: Any) -> "Gate | None":
    """The gate a model recommends in its ``config.json`` (``extra.gate``: ``min_iou``,
    ``area_ratio``, ``max_iou``), or ``None`` when it names none (e.g. converted original weights)."""
    spec = (getattr(config, "extra", None) or {}).get("gate")
    if spec is None:
        return None
    if not isinstance(spec, dict) or not set(spec) <= {"min_iou", "area_ratio", "max_iou", "score_margin"}:
        raise ValueError(
            "config.json extra.gate must be an object with min_iou, area_ratio, max_iou (and score_margin); "
            f"got {spec!r}"
        )
    return Gate(**spec)


def resolve_gate(gate: GateArg, config: Any) -> Optional[GateLike]:
    """The one meaning of a ``gate`` argument everywhere (``Refiner.from_pretrained``,
    ``RefinedTracker``, ``evaluate``): ``"auto"`` -> the gate the model's config recommends
    (:func:`gate_from_config`), ``None`` -> no gate (every refined box is used), or an object with
    ``accept(input_box, refined_box) -> bool`` such as :class:`Gate`, used as it is."""
    if isinstance(gate, str):
        if gate != "auto":
            raise ValueError(
                f"gate must be 'auto', None or an object with accept(input_box, refined_box); got {gate!r}"
            )
        return gate_from_config(config)
    if gate is not None and not callable(getattr(gate, "accept", None)):
        raise TypeError(
            f"gate must be 'auto', None or an object with accept(input_box, refined_box) -> bool; "
            f"got {type(gate).__name__}"
        )
    return gate
