"""Box jitter, photometric changes and copy-paste compositing for training pairs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .._optional import require


@dataclass(frozen=True)
class Jitter:
    """Search-box jitter of the paper (§3.4 / spec §7): ``size * exp(N * scale)``, centre +
    ``(U - 0.5) * center * sqrt(w' h')``. ``aspect`` adds an independent log-normal aspect change."""

    scale: float = 0.25
    center: float = 0.25
    aspect: float = 0.0

    def apply(self, box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x, y, w, h = box
        size = np.array([w, h]) * np.exp(rng.standard_normal(2) * self.scale)
        if self.aspect:
            a = np.exp(rng.standard_normal() * self.aspect / 2)
            size = size * [a, 1 / a]
        o_max = np.sqrt(size[0] * size[1]) * self.center
        c = np.array([x + w / 2, y + h / 2]) + o_max * (rng.random(2) - 0.5)
        return np.array([c[0] - size[0] / 2, c[1] - size[1] / 2, size[0], size[1]])


def pick_jitter(levels: Sequence[Tuple[float, Jitter]], rng: np.random.Generator) -> Jitter:
    """Choose a jitter level by weight (``[(weight, Jitter), ...]``)."""
    w = np.array([lv[0] for lv in levels], dtype=np.float64)
    return levels[int(rng.choice(len(levels), p=w / w.sum()))][1]


def brightness(img: np.ndarray, rng: np.random.Generator, low: float = 0.8, high: float = 1.2) -> np.ndarray:
    """Multiply by ``b ~ U(low, high)`` and clip (uint8 in, uint8 out)."""
    b = rng.uniform(low, high)
    lut = np.clip(np.arange(256) * b, 0, 255).astype(np.uint8)
    return lut[img]


#: The camera-quality changes :func:`degrade` picks from (``degrade_kinds`` in the training config);
#: the first four are the default set.
DEGRADE_KINDS = ("resolution", "blur", "noise", "colour", "motion", "jpeg", "tiny")
DEFAULT_DEGRADE_KINDS = DEGRADE_KINDS[:4]


def check_degrade(p: float, kinds: Sequence[str]) -> Tuple[str, ...]:
    """``degrade_p`` and ``degrade_kinds`` validated (a ValueError names the key); the kinds as a tuple."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"degrade_p must be within [0, 1] (a share of crops); got {p!r}")
    if isinstance(kinds, str) or not kinds or any(k not in DEGRADE_KINDS for k in kinds):
        raise ValueError(f"degrade_kinds must be a non-empty list from {list(DEGRADE_KINDS)}; got {kinds!r}")
    return tuple(kinds)


def _down_up(img: np.ndarray, fx: float, fy: float) -> np.ndarray:
    """``img`` resized by ``(fx, fy)`` (area averaging) and back to its size (bilinear)."""
    cv2 = require("cv2")
    H, W = img.shape[:2]
    small = cv2.resize(img, (max(2, int(round(W * fx))), max(2, int(round(H * fy)))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)


def degrade(img: np.ndarray, rng: np.random.Generator, kinds: Sequence[str] = DEFAULT_DEGRADE_KINDS) -> np.ndarray:
    """One camera-quality change of a uint8 RGB crop, picked at random from ``kinds``: ``resolution``
    (down by U(0.35, 0.8) and back up), ``blur`` (Gaussian, sigma U(0.5, 1.5)), ``noise`` (sensor
    noise, sigma U(2, 8)), ``colour`` (per-channel gain U(0.9, 1.1), contrast U(0.75, 1.25)),
    ``motion`` (a line kernel 3-9 px long at a random angle), ``jpeg`` (quality 20-60), ``tiny`` (a
    target a few tens of pixels across in its frame: each axis down by log-U(0.12, 0.5) and back up).
    Same shape out."""
    cv2 = require("cv2")
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "resolution":
        f = rng.uniform(0.35, 0.8)
        return _down_up(img, f, f)
    if kind == "tiny":
        fx, fy = np.exp(rng.uniform(np.log(0.12), np.log(0.5), 2))
        return _down_up(img, fx, fy)
    if kind == "blur":
        return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    if kind == "motion":
        n = int(rng.integers(3, 10))
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0
        rot = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), rng.uniform(0, 180), 1.0)
        k = cv2.warpAffine(k, rot, (n, n))
        return cv2.filter2D(img, -1, k / max(float(k.sum()), 1e-6), borderType=cv2.BORDER_REFLECT)
    if kind == "jpeg":
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 61))])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).reshape(img.shape) if ok else img
    x = img.astype(np.float32)
    if kind == "noise":
        x += rng.normal(0.0, rng.uniform(2.0, 8.0), x.shape).astype(np.float32)
    else:  # colour
        mean = x.mean()
        x = (x - mean) * rng.uniform(0.75, 1.25) + mean
        x *= rng.uniform(0.9, 1.1, 3).astype(np.float32)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def grayscale(img: np.ndarray) -> np.ndarray:
    cv2 = require("cv2")
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return np.repeat(g[:, :, None], 3, axis=2)


def rescale(img: np.ndarray, mask: Optional[np.ndarray], box: np.ndarray, fx: float, fy: float):
    """Resize an image (and mask) by ``(fx, fy)``; the box follows."""
    cv2 = require("cv2")
    h, w = img.shape[:2]
    nw, nh = max(8, round(w * fx)), max(8, round(h * fy))
    fx, fy = nw / w, nh / h
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    if mask is not None:
        mask = cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_NEAREST)
    return img, mask, box * [fx, fy, fx, fy]


def paste(
    background: np.ndarray,
    obj: np.ndarray,
    obj_mask: np.ndarray,
    rng: np.random.Generator,
    *,
    size_range: Tuple[float, float] = (0.12, 0.5),
    scale: float = 1.0,
    aspect: float = 1.0,
) -> Tuple[np.ndarray, np.ndarray]:
    """Paste the masked object cut-out onto a copy of ``background`` at a random place.

    The object's ``sqrt(w h)`` becomes ``U(size_range) * sqrt(H W) * scale`` (capped to fit), its
    aspect ratio is multiplied by ``aspect``. Returns ``(image, mask)`` with a 0/255 full-size mask.
    """
    cv2 = require("cv2")
    H, W = background.shape[:2]
    oh, ow = obj.shape[:2]
    target = rng.uniform(*size_range) * np.sqrt(H * W) * scale
    s = target / np.sqrt(oh * ow)
    sx, sy = s * np.sqrt(aspect), s / np.sqrt(aspect)
    fit = min(1.0, 0.95 * W / (ow * sx), 0.95 * H / (oh * sy))
    nw, nh = max(4, int(round(ow * sx * fit))), max(4, int(round(oh * sy * fit)))
    o = cv2.resize(obj, (nw, nh), interpolation=cv2.INTER_LINEAR)
    m = cv2.resize(obj_mask, (nw, nh), interpolation=cv2.INTER_LINEAR)
    x0 = int(rng.integers(0, W - nw + 1))
    y0 = int(rng.integers(0, H - nh + 1))
    out = background.copy()
    a = (m.astype(np.float32) / 255.0)[:, :, None]
    region = out[y0 : y0 + nh, x0 : x0 + nw].astype(np.float32)
    out[y0 : y0 + nh, x0 : x0 + nw] = (region * (1 - a) + o.astype(np.float32) * a + 0.5).astype(np.uint8)
    full = np.zeros((H, W), dtype=np.uint8)
    full[y0 : y0 + nh, x0 : x0 + nw] = np.where(m >= 128, 255, 0).astype(np.uint8)
    return out, full


def cutout(image: np.ndarray, mask: np.ndarray, box: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The object's box region and its mask (for pasting elsewhere)."""
    x, y, w, h = (int(round(v)) for v in box)
    H, W = mask.shape
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(W, x + max(w, 1)), min(H, y + max(h, 1))
    return image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
