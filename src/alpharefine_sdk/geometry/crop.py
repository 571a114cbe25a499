"""The crop every refiner input goes through, and the maps from crop space back to the frame.

Conventions kept from the original on purpose (the weights were trained with them):
the window is ``ceil(f*w) x ceil(f*h)`` (not square, stretched to ``S x S``), its origin is
rounded half-to-even, the right/bottom padding drops the last frame column/row when the window
reaches the edge, the resize is OpenCV's fixed-point bilinear, and boxes map back from the
unrounded origin ``x - (f-1)/2*w``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from .._optional import require


@dataclass(frozen=True)
class CropWindow:
    """Integer window ``[x1, x1+ws) x [y1, y1+hs)`` in frame pixels around ``box``."""

    x1: int
    y1: int
    ws: int
    hs: int
    box: Tuple[float, float, float, float]
    factor: float
    out_size: int

    @property
    def w_f(self) -> float:
        return self.out_size / self.ws

    @property
    def h_f(self) -> float:
        return self.out_size / self.hs


def crop_window(box: Sequence[float], factor: float = 2.0, out_size: int = 256) -> CropWindow:
    """Window of ``factor`` x the box around its centre (box already validated)."""
    x, y, w, h = (float(v) for v in box)
    ws, hs = math.ceil(factor * w), math.ceil(factor * h)
    if ws < 1 or hs < 1:
        raise ValueError(f"box {tuple(box)} is too small to crop (width and height must be > 0)")
    x1 = round(x + 0.5 * w - ws * 0.5)
    y1 = round(y + 0.5 * h - hs * 0.5)
    return CropWindow(x1, y1, ws, hs, (x, y, w, h), factor, out_size)


# Windows that need padding are built exactly as the original (padded copy, then cv2.resize) up to
# this many pixels (12 MB for a colour frame; every realistic window, all parity cases); larger
# ones are sampled by one cv2.remap that reads only the visible part of the frame.
EXACT_PAD_PIXELS = 4_000_000
PASTE_CHUNK_FLOATS = 4_000_000  # a large mask is pasted in bands of at most this many floats (16 MB)


def _visible(win: CropWindow, H: int, W: int) -> Tuple[int, int, int, int]:
    """Rows ``r0:r1`` and columns ``c0:c1`` of the frame inside the window, as the original cuts them
    (the last frame column/row is dropped when the window reaches the edge); when that leaves
    nothing (a sliver of a box on the last column), the plain intersection."""
    x2, y2 = win.x1 + win.ws, win.y1 + win.hs
    r0, c0 = max(win.y1, 0), max(win.x1, 0)
    r1 = y2 - max(0, y2 - H + 1)
    c1 = x2 - max(0, x2 - W + 1)
    if r1 <= r0 or c1 <= c0:
        r1, c1 = min(y2, H), min(x2, W)
    if r1 <= r0 or c1 <= c0:
        raise ValueError("crop window lies outside the frame")
    return r0, r1, c0, c1


def crop_patch(frame: np.ndarray, win: CropWindow) -> np.ndarray:
    """``S x S x C`` uint8 crop of ``frame`` (any channel order) for ``win``, zero padded.

    Memory and time are bounded whatever the window: a window inside the frame is resized from a
    view, a padded one is copied only when small (exactly the original's result), else remapped.
    """
    cv2 = require("cv2")
    H, W = frame.shape[:2]
    S = win.out_size
    r0, r1, c0, c1 = _visible(win, H, W)
    patch = frame[r0:r1, c0:c1]
    pl, pt = c0 - win.x1, r0 - win.y1
    pr, pb = win.x1 + win.ws - c1, win.y1 + win.hs - r1
    if not (pl or pr or pt or pb):
        return cv2.resize(patch, (S, S))
    if win.ws * win.hs <= EXACT_PAD_PIXELS:
        patch = cv2.copyMakeBorder(patch, pt, pb, pl, pr, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        return cv2.resize(patch, (S, S))
    # One remap reading only the visible part: output pixel u samples window x = (u + 0.5) * ws/S - 0.5
    # clamped to the window (as cv2.resize does); padding lies outside ``patch`` and reads as zeros.
    u = np.arange(S, dtype=np.float64) + 0.5
    mx = np.clip(u * (win.ws / S) - 0.5, 0, win.ws - 1) - pl
    my = np.clip(u * (win.hs / S) - 0.5, 0, win.hs - 1) - pt
    map_x = np.broadcast_to(mx.astype(np.float32)[None, :], (S, S))
    map_y = np.broadcast_to(my.astype(np.float32)[:, None], (S, S))
    return cv2.remap(
        patch,
        np.ascontiguousarray(map_x),
        np.ascontiguousarray(map_y),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def box_from_corners(corners: np.ndarray, win: CropWindow) -> np.ndarray:
    """Map crop-space corners ``(x_tl, y_tl, x_br, y_br)`` back to a frame box ``(x, y, w, h)``.

    The width/height subtraction happens in float32 and the origin is the unrounded
    ``x - (f-1)/2*w``, exactly as the original; result float64, unclipped.
    """
    c = np.asarray(corners, dtype=np.float32).reshape(4)
    wh = c[2:] - c[:2]  # float32
    x, y, w, h = win.box
    k = (win.factor - 1.0) / 2.0
    x0, y0 = x - k * w, y - k * h
    return np.array(
        [x0 + float(c[0]) / win.w_f, y0 + float(c[1]) / win.h_f, float(wh[0]) / win.w_f, float(wh[1]) / win.h_f],
        dtype=np.float64,
    )


def box_in_crop(target: Sequence[float], win: CropWindow) -> np.ndarray:
    """Box ``target`` (frame pixels) in crop coordinates ``(x, y, w, h)``, clamped to ``[0, S]``.

    The crop centre sits at ``(S-1)/2`` and the window's unrounded box centre maps onto it (the
    original's label convention).
    """
    tx, ty, tw, th = (float(v) for v in target)
    bx, by, bw, bh = win.box
    S = win.out_size
    xc = (S - 1) / 2 + ((tx + tw / 2) - (bx + bw / 2)) * win.w_f
    yc = (S - 1) / 2 + ((ty + th / 2) - (by + bh / 2)) * win.h_f
    w2, h2 = tw * win.w_f / 2, th * win.h_f / 2
    x1, x2 = np.clip([xc - w2, xc + w2], 0, S)
    y1, y2 = np.clip([yc - h2, yc + h2], 0, S)
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)


def paste_mask(mask_crop: np.ndarray, win: CropWindow, frame_hw: Tuple[int, int]) -> np.ndarray:
    """Resize an ``S x S`` crop mask to the window and paste it into an ``H x W`` float32 map.

    Only the part of the window inside the frame is computed when the window is large, in bands,
    so the memory used beyond the ``H x W`` result is at most 16 MB.
    """
    cv2 = require("cv2")
    H, W = frame_hw
    out = np.zeros((H, W), dtype=np.float32)
    fx0, fy0 = max(win.x1, 0), max(win.y1, 0)
    fx1, fy1 = min(win.x1 + win.ws, W), min(win.y1 + win.hs, H)
    if fx1 <= fx0 or fy1 <= fy0:
        return out
    m = np.ascontiguousarray(mask_crop, dtype=np.float32)
    if win.ws * win.hs <= EXACT_PAD_PIXELS:
        r = cv2.resize(m, (win.ws, win.hs))
        out[fy0:fy1, fx0:fx1] = r[fy0 - win.y1 : fy1 - win.y1, fx0 - win.x1 : fx1 - win.x1]
        return out
    S = m.shape[0]
    sx, sy = S / win.ws, S / win.hs  # frame pixel X samples crop u = (X - x1 + 0.5) * sx - 0.5, as resize
    rows = max(1, PASTE_CHUNK_FLOATS // (fx1 - fx0))  # in bands, so only the result is frame-sized
    for r0 in range(fy0, fy1, rows):
        r1 = min(r0 + rows, fy1)
        a = np.array([[sx, 0.0, (fx0 - win.x1 + 0.5) * sx - 0.5], [0.0, sy, (r0 - win.y1 + 0.5) * sy - 0.5]])
        out[r0:r1, fx0:fx1] = cv2.warpAffine(
            m, a, (fx1 - fx0, r1 - r0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
        )
    return out
