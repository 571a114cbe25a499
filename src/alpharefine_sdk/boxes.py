"""Box and frame validation, conversions and clipping. Boxes are ``(x, y, w, h)``, top-left origin."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

IMAGE_FORMATS = ("RGB", "BGR")


# Valid ranges (one place; quoted in the messages and docs/security.md).
MAX_COORD = 100_000.0  # |x|, |y|, w and h of a box, in pixels: far beyond any frame OpenCV can hold
MIN_SIZE = 10.0  # refined boxes keep at least this many pixels a side inside the frame (one default)
MAX_FRAME_SIDE = 32_767  # OpenCV's coordinate limit (SHRT_MAX)


def as_box(box: Any, name: str = "box") -> np.ndarray:
    """Validate a box and return it as float64 ``(4,)``.

    Accepts a list, tuple, numpy array or tensor of 4 real numbers (shape ``(4,)`` or ``(1, 4)``).
    Raises ``TypeError`` for non-numeric, boolean or complex input and ``ValueError`` for another
    shape, NaN/inf, a value beyond +-``MAX_COORD`` or a width or height <= 0.
    """
    if hasattr(box, "detach"):  # torch tensor
        box = box.detach().cpu().numpy()
    try:
        arr = np.asarray(box)
    except Exception:  # ragged lists, exotic objects
        raise TypeError(f"{name} must be 4 numbers (x, y, w, h); got {type(box).__name__}") from None
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be 4 real numbers (x, y, w, h); got {arr.dtype} values {box!r}")
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be 4 numbers (x, y, w, h); got {box!r}")
    if arr.shape not in ((4,), (1, 4)):
        raise ValueError(f"{name} must have 4 values (x, y, w, h), shape (4,) or (1, 4); got shape {arr.shape}")
    arr = arr.reshape(4).astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf: {arr.tolist()}; pass a finite (x, y, w, h) box")
    if np.abs(arr).max() > MAX_COORD:
        raise ValueError(f"{name} {arr.tolist()} has a value beyond +-{MAX_COORD:g} pixels; pass a box in frame pixels")
    if arr[2] <= 0 or arr[3] <= 0:
        raise ValueError(
            f"{name} must have width and height > 0; got w={arr[2]:g}, h={arr[3]:g} "
            "(boxes are (x, y, w, h), not (x1, y1, x2, y2): use xyxy_to_xywh)"
        )
    return arr


def check_min_size(min_size: Any, name: str = "min_size") -> float:
    """A finite number of pixels >= 1 (the smallest side a clipped box keeps)."""
    if (
        isinstance(min_size, bool)
        or not isinstance(min_size, (int, float, np.integer, np.floating))
        or not (1.0 <= float(min_size) <= MAX_COORD)
    ):
        raise ValueError(f"{name} must be a number in [1, {MAX_COORD:g}] (pixels); got {min_size!r}")
    return float(min_size)


def as_frame(frame: Any, name: str = "frame") -> np.ndarray:
    """Validate a frame: ``H x W x 3`` (or ``H x W`` / ``H x W x 1`` grayscale) uint8, non-empty.

    Returns the array (a view, not a copy); grayscale stays 2-D.
    """
    if not isinstance(frame, np.ndarray):
        if hasattr(frame, "__array_interface__") or hasattr(frame, "__array__"):
            frame = np.asarray(frame)
        else:
            raise TypeError(f"{name} must be a numpy array H x W x 3 uint8; got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise TypeError(
            f"{name} must be uint8 (0..255); got {frame.dtype}. Convert with "
            "np.clip(img * 255, 0, 255).astype(np.uint8) for [0, 1] floats, or img.astype(np.uint8)"
        )
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] != 3):
        raise ValueError(
            f"{name} must be H x W x 3 (or H x W grayscale); got shape {frame.shape}"
            + (
                " - drop the alpha channel first, e.g. frame[..., :3]"
                if frame.ndim == 3 and frame.shape[2] == 4
                else ""
            )
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {frame.shape})")
    if max(frame.shape[:2]) > MAX_FRAME_SIDE:
        raise ValueError(
            f"{name} is {frame.shape[1]}x{frame.shape[0]}; sides up to {MAX_FRAME_SIDE} pixels are supported"
        )
    return frame


def check_image_format(image_format: str) -> str:
    fmt = str(image_format).upper()
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be 'RGB' or 'BGR'; got {image_format!r}")
    return fmt


def check_inside(box: np.ndarray, frame_hw: Tuple[int, int], name: str = "box") -> None:
    """Raise ``ValueError`` if ``box`` lies wholly outside the frame (no pixel in common)."""
    H, W = frame_hw
    x, y, w, h = box
    if x >= W or y >= H or x + w <= 0 or y + h <= 0:
        raise ValueError(
            f"{name} {box.tolist()} lies wholly outside the {W}x{H} frame; the target is lost, "
            "re-detect it instead of refining"
        )


def clip_box(box: Sequence[float], frame_hw: Tuple[int, int], min_size: float = MIN_SIZE) -> np.ndarray:
    """Clip to the frame keeping at least ``min_size`` pixels a side (the original's rule).

    For ordinary boxes this is exactly the original's clip; inverted or collapsed boxes (which the
    original turned into ``w <= 0``) are sorted and grown to ``min_size`` around their centre.
    """
    H, W = frame_hw
    x, y, w, h = (float(v) for v in box)
    xs = sorted((x, x + w))
    ys = sorted((y, y + h))
    out = []
    for (a, b), size in ((xs, W), (ys, H)):
        m = min(min_size, size)
        a2, b2 = max(0.0, min(a, size - m)), max(m, min(b, size))
        if b2 - a2 < m:
            c = min(max((a2 + b2) / 2, m / 2), size - m / 2)
            a2, b2 = c - m / 2, c + m / 2
        out += [a2, b2]
    return np.array([out[0], out[2], out[1] - out[0], out[3] - out[2]], dtype=np.float64)


def xyxy_to_xywh(box: Any) -> np.ndarray:
    """``(x1, y1, x2, y2)`` -> ``(x, y, w, h)`` float64, over the last axis of ``[..., 4]``."""
    a = np.asarray(box, dtype=np.float64)
    return np.concatenate([a[..., :2], a[..., 2:] - a[..., :2]], axis=-1)


def xywh_to_xyxy(box: Sequence[float]) -> np.ndarray:
    x, y, w, h = (float(v) for v in box)
    return np.array([x, y, x + w, y + h])


def xywh_to_cxcywh(box: Sequence[float]) -> np.ndarray:
    x, y, w, h = (float(v) for v in box)
    return np.array([x + w / 2, y + h / 2, w, h])


def cxcywh_to_xywh(box: Sequence[float]) -> np.ndarray:
    cx, cy, w, h = (float(v) for v in box)
    return np.array([cx - w / 2, cy - h / 2, w, h])


def round_box_for_opencv(box: Sequence[float], frame_hw: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """Integer ``(x, y, w, h)`` inside the frame with ``w, h >= 1`` (OpenCV's new API refuses floats)."""
    H, W = frame_hw
    x, y, w, h = (float(v) for v in box)
    x1, y1 = int(round(x)), int(round(y))
    x2, y2 = int(round(x + w)), int(round(y + h))
    x1, y1 = min(max(x1, 0), W - 1), min(max(y1, 0), H - 1)
    x2, y2 = min(max(x2, x1 + 1), W), min(max(y2, y1 + 1), H)
    return x1, y1, x2 - x1, y2 - y1


def mask_to_box(mask: np.ndarray, threshold: float = 0.0) -> Optional[np.ndarray]:
    """Tight ``(x, y, w, h)`` box of the pixels with ``mask > threshold`` (pixel-inclusive:
    ``x1 - x0 + 1``), float64, or ``None`` when there are none. ``threshold=0.5`` for probabilities."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be a 2-D array; got shape {m.shape}")
    ys, xs = np.nonzero(m > threshold)
    if xs.size == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], dtype=np.float64)


def is_usable(box: Any) -> bool:
    """``True`` for a box ``(x, y, w, h)`` of 4 finite numbers with ``w, h > 0`` (the one test of a
    box that can be drawn, refined or used to initialise a tracker)."""
    try:
        b = np.asarray(box, dtype=np.float64).reshape(4)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(b).all() and b[2] > 0 and b[3] > 0)


def iou(a: Any, b: Any, eps: float = 0.0) -> Any:
    """Continuous IoU of ``(x, y, w, h)`` boxes (the got10k toolkit convention), broadcast over
    leading axes of ``[..., 4]`` arrays: a float for two boxes, else an array. 0 where the union is
    empty; ``eps`` is added to the union (got10k's ``rect_iou`` adds 1e-12)."""
    A, B = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    iw = np.maximum(np.minimum(A[..., 0] + A[..., 2], B[..., 0] + B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0.0)
    ih = np.maximum(np.minimum(A[..., 1] + A[..., 3], B[..., 1] + B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0.0)
    inter = iw * ih
    area = lambda z: np.maximum(z[..., 2], 0.0) * np.maximum(z[..., 3], 0.0)  # noqa: E731
    union = area(A) + area(B) - inter + eps
    out = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return float(out) if out.ndim == 0 else out
