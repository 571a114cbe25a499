"""Write a refined ``(x, y, w, h)`` box into a base tracker's own state fields (spec §5).

One small function per state layout. Each keeps the container type the tracker uses (numpy array,
torch tensor with its dtype and device, list or float), so the tracker's next frame sees the same
kinds of values it wrote itself.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np


def _like(old: Any, values: Sequence[float]) -> Any:
    """``values`` in the container type of ``old`` (tensor, numpy array, list or tuple)."""
    if hasattr(old, "detach") and hasattr(old, "new_tensor"):  # torch tensor: same dtype and device
        return old.new_tensor(list(values))
    if isinstance(old, np.ndarray):
        return np.asarray(values, dtype=old.dtype if np.issubdtype(old.dtype, np.floating) else np.float64)
    if isinstance(old, tuple):
        return tuple(float(v) for v in values)
    return [float(v) for v in values]


def _scalar_like(old: Any, value: float) -> Any:
    if hasattr(old, "detach") and hasattr(old, "new_tensor"):
        return old.new_tensor(value)
    if isinstance(old, np.ndarray):
        return np.asarray(value, dtype=old.dtype)
    return float(value)


def _num(v: Any) -> Optional[float]:
    if v is None:
        return None
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    arr = np.asarray(v, dtype=np.float64)
    return float(arr.reshape(-1)[0]) if arr.size else None


def has_pysot_state(tracker: Any) -> bool:
    return hasattr(tracker, "center_pos") and hasattr(tracker, "size")


def write_pysot(tracker: Any, box: Sequence[float]) -> None:
    """pysot (SiamRPN++, SiamMask, SiamRPN-LT): ``center_pos = (x + w/2, y + h/2)``, ``size = (w, h)``."""
    x, y, w, h = (float(v) for v in box)
    tracker.center_pos = _like(getattr(tracker, "center_pos", None), (x + w / 2, y + h / 2))
    tracker.size = _like(getattr(tracker, "size", None), (w, h))


def has_pytracking_state(tracker: Any) -> bool:
    return hasattr(tracker, "pos") and hasattr(tracker, "target_sz")


def write_pytracking(tracker: Any, box: Sequence[float], centre: str = "inclusive") -> None:
    """pytracking DiMP/ATOM/ECO: ``pos = (cy, cx)``, ``target_sz = (h, w)``, ``target_scale``.

    ``centre="inclusive"`` (default) uses pytracking's own ``cy = y + (h-1)/2``, so the tracker
    reports exactly the refined box if it does not move; ``"original"`` uses Alpha-Refine's
    ``y + h/2``. ``target_scale = sqrt(h*w / prod(base_target_sz))``, clamped to the tracker's
    ``min_scale_factor`` / ``max_scale_factor`` when it has them (the original did not clamp).
    """
    if centre not in ("inclusive", "original"):
        raise ValueError(f"centre must be 'inclusive' or 'original'; got {centre!r}")
    x, y, w, h = (float(v) for v in box)
    off_w, off_h = ((w - 1) / 2, (h - 1) / 2) if centre == "inclusive" else (w / 2, h / 2)
    tracker.pos = _like(getattr(tracker, "pos", None), (y + off_h, x + off_w))
    tracker.target_sz = _like(getattr(tracker, "target_sz", None), (h, w))
    base_sz = getattr(tracker, "base_target_sz", None)
    if base_sz is None or not hasattr(tracker, "target_scale"):
        return
    if hasattr(base_sz, "detach"):
        base_sz = base_sz.detach().cpu().numpy()
    base_area = float(np.prod(np.asarray(base_sz, dtype=np.float64)))
    if base_area <= 0:
        return
    scale = math.sqrt(h * w / base_area)
    lo, hi = _num(getattr(tracker, "min_scale_factor", None)), _num(getattr(tracker, "max_scale_factor", None))
    if lo is not None:
        scale = max(scale, lo)
    if hi is not None:
        scale = min(scale, hi)
    tracker.target_scale = _scalar_like(tracker.target_scale, scale)


def has_state_list(tracker: Any) -> bool:
    return hasattr(tracker, "state")


def write_state_list(tracker: Any, box: Sequence[float]) -> None:
    """STARK / OSTrack / MixFormer: ``state = [x, y, w, h]`` (a list of floats)."""
    tracker.state = _like(getattr(tracker, "state", None), [float(v) for v in box])


def write_known_state(tracker: Any, box: Sequence[float]) -> bool:
    """Write into whichever known state layout ``tracker`` has; ``False`` when it has none."""
    if has_pytracking_state(tracker):
        write_pytracking(tracker, box)
    elif has_pysot_state(tracker):
        write_pysot(tracker, box)
    elif has_state_list(tracker):
        write_state_list(tracker, box)
    else:
        return False
    return True
