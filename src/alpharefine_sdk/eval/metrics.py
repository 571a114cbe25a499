"""Tracking metrics with the got10k toolkit's conventions (cross-checked against it in the tests).

Boxes are ``[N, 4]`` ``(x, y, w, h)`` arrays. Ground-truth rows with NaN (absent or unknown target)
are skipped everywhere (got10k's OTB experiment would count them as failures; pytracking counts
them as failures too unless ``exclude_invalid_frames``). See ``docs/evaluation.md``.

* IoU: continuous (``rect_iou``: ``x + w`` is the right edge). pytracking's pixel-inclusive formula
  (last pixel ``x + w - 1``, intersection ``+ 1``; :func:`iou_pixel`) gives the same number for xywh
  boxes: the "+1" only matters where corner boxes are converted (``w = x2 - x1 + 1`` vs ``x2 - x1``).
* Success curve: 21 thresholds ``linspace(0, 1, 21)``, ``IoU > t``; AUC = mean of the curve, per
  sequence, then averaged over sequences (OTB, got10k ``ExperimentOTB``).
* Precision: centre error with centres at ``x + (w - 1) / 2``; curve over 0..50 px (``<= t``),
  P = value at 20 px.
* Normalized precision (pytracking/LaSOT): centres divided by the ground-truth ``(w, h)``; curve over
  0..0.5 in steps of 0.01, P_norm = value at 0.2.
* GOT-10k AO and SR@0.5/0.75: frame 0 excluded, absent frames excluded, boxes bounded to the
  image as got10k's ``rect_iou(bound=(W, H))`` does, IoUs pooled over all frames of all sequences.
* Mask J: region IoU of binary masks per frame (DAVIS), frame 0 excluded.
* fps: timed frames / total time (frame 0, the initialisation, is not timed). got10k averages the
  per-frame speeds ``mean(1 / t)`` instead, which a few very fast frames (e.g. a lost target) dominate.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from ..boxes import iou

__all__ = [
    "rect_iou",
    "iou_pixel",
    "center_error",
    "normalized_center_error",
    "success_curve",
    "precision_curve",
    "normalized_precision_curve",
    "sequence_metrics",
    "summarize",
    "mask_iou",
    "paired_bootstrap_ci",
    "IOU_THRESHOLDS",
    "PIXEL_THRESHOLDS",
    "NORM_THRESHOLDS",
]

IOU_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PIXEL_THRESHOLDS = np.arange(0, 51, dtype=np.float64)
NORM_THRESHOLDS = np.arange(0, 51, dtype=np.float64) / 100.0
_EPS = np.finfo(float).eps


def _as_boxes(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must be an [N, 4] array of (x, y, w, h) boxes; got shape {arr.shape}")
    return arr


def _bounded(r: np.ndarray, bound: Tuple[float, float]) -> np.ndarray:
    r = r.copy()  # got10k clips in place; we do it on a copy with the same arithmetic
    r[:, 0] = np.clip(r[:, 0], 0, bound[0])
    r[:, 1] = np.clip(r[:, 1], 0, bound[1])
    r[:, 2] = np.clip(r[:, 2], 0, bound[0] - r[:, 0])
    r[:, 3] = np.clip(r[:, 3], 0, bound[1] - r[:, 1])
    return r


def rect_iou(pred: np.ndarray, gt: np.ndarray, bound: Optional[Tuple[float, float]] = None) -> np.ndarray:
    """Continuous IoU per row (got10k ``rect_iou``); ``bound=(W, H)`` clips both sides first."""
    a, b = _as_boxes(pred, "pred"), _as_boxes(gt, "gt")
    if a.shape != b.shape:
        raise ValueError(f"pred and gt must have the same shape; got {a.shape} and {b.shape}")
    if bound is not None:
        a, b = _bounded(a, bound), _bounded(b, bound)
    return np.clip(iou(a, b, eps=_EPS), 0.0, 1.0)


def iou_pixel(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """pytracking's IoU: boxes cover pixels ``x .. x + w - 1`` (the "+1" convention); equal to
    :func:`rect_iou` for ``(x, y, w, h)`` boxes (kept to document and test that)."""
    a, b = _as_boxes(pred, "pred"), _as_boxes(gt, "gt")
    tl = np.maximum(a[:, :2], b[:, :2])
    br = np.minimum(a[:, :2] + a[:, 2:] - 1.0, b[:, :2] + b[:, 2:] - 1.0)
    inter = np.clip(br - tl + 1.0, 0, None).prod(axis=1)
    union = a[:, 2:].prod(axis=1) + b[:, 2:].prod(axis=1) - inter
    return inter / union


def center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance of the centres ``x + (w - 1) / 2`` in pixels (got10k, OTB)."""
    a, b = _as_boxes(pred, "pred"), _as_boxes(gt, "gt")
    ca = a[:, :2] + (a[:, 2:] - 1) / 2
    cb = b[:, :2] + (b[:, 2:] - 1) / 2
    return np.sqrt(((ca - cb) ** 2).sum(axis=1))


def normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Centre distance with both centres divided by the ground truth's ``(w, h)`` (pytracking)."""
    a, b = _as_boxes(pred, "pred"), _as_boxes(gt, "gt")
    ca = (a[:, :2] + 0.5 * (a[:, 2:] - 1.0)) / b[:, 2:]
    cb = (b[:, :2] + 0.5 * (b[:, 2:] - 1.0)) / b[:, 2:]
    return np.sqrt(((ca - cb) ** 2).sum(axis=1))


def success_curve(ious: np.ndarray) -> np.ndarray:
    """Fraction of frames with ``IoU > t`` for the 21 thresholds in :data:`IOU_THRESHOLDS`."""
    ious = np.asarray(ious, dtype=np.float64)
    if ious.size == 0:
        return np.full(len(IOU_THRESHOLDS), np.nan)
    return (ious[:, None] > IOU_THRESHOLDS[None]).mean(axis=0)


def precision_curve(errors: np.ndarray, thresholds: np.ndarray = PIXEL_THRESHOLDS) -> np.ndarray:
    """Fraction of frames with ``error <= t`` for each threshold."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.size == 0:
        return np.full(len(thresholds), np.nan)
    return (errors[:, None] <= thresholds[None]).mean(axis=0)


def normalized_precision_curve(errors: np.ndarray) -> np.ndarray:
    return precision_curve(errors, NORM_THRESHOLDS)


def _valid(gt: np.ndarray) -> np.ndarray:
    return np.isfinite(gt).all(axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)


def sequence_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    image_size: Optional[Tuple[int, int]] = None,
    times: Optional[np.ndarray] = None,
) -> Dict[str, object]:
    """All box metrics of one sequence. ``pred[0]`` is replaced by ``gt[0]`` (the init frame), as
    got10k does. ``image_size=(W, H)`` bounds boxes for AO/SR (GOT-10k). ``times``: seconds per frame
    (non-positive or NaN entries, such as the untimed frame 0, are ignored).

    Returns scalars (``auc``, ``precision``, ``norm_precision``, ``ao``, ``sr50``, ``sr75``,
    ``miou``, ``fps``), the curves and the IoUs used for AO (``ao_ious``, frames 1.. that are valid).
    """
    pred = _as_boxes(pred, "pred").copy()
    gt = _as_boxes(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred has {len(pred)} boxes but the ground truth has {len(gt)}; one box per frame is needed")
    valid = _valid(gt)
    if valid[0]:
        pred[0] = gt[0]
    if not np.isfinite(pred[valid]).all():
        raise ValueError("pred contains NaN/inf boxes on annotated frames; write the last known box instead")
    p, g = pred[valid], gt[valid]
    ious = rect_iou(p, g)
    succ = success_curve(ious)
    prec = precision_curve(center_error(p, g))
    nprec = normalized_precision_curve(normalized_center_error(p, g))
    later = valid.copy()
    later[0] = False
    ao_ious = rect_iou(pred[later], gt[later], bound=image_size)
    out: Dict[str, object] = {
        "frames": int(len(gt)),
        "valid_frames": int(valid.sum()),
        "auc": float(succ.mean()),
        "precision": float(prec[20]),
        "norm_precision": float(nprec[20]),
        "ao": float(ao_ious.mean()) if ao_ious.size else float("nan"),
        "sr50": float((ao_ious > 0.5).mean()) if ao_ious.size else float("nan"),
        "sr75": float((ao_ious > 0.75).mean()) if ao_ious.size else float("nan"),
        "miou": float(rect_iou(pred[later], gt[later]).mean()) if later.any() else float("nan"),
        "success_curve": succ,
        "precision_curve": prec,
        "norm_precision_curve": nprec,
        "ao_ious": ao_ious,
    }
    if times is not None:
        t = np.asarray(times, dtype=np.float64)
        t = t[np.isfinite(t) & (t > 0)]
        out["fps"] = float(t.size / t.sum()) if t.size else float("nan")
        out["timed_frames"], out["time_s"] = int(t.size), float(t.sum())
    return out


def summarize(per_seq: Iterable[Dict[str, object]]) -> Dict[str, object]:
    """Dataset-level numbers: curves and AUC/P/P_norm/mIoU averaged over sequences (OTB style), AO and SR
    pooled over frames (GOT-10k style), fps = all timed frames / their total time."""
    seqs = list(per_seq)
    if not seqs:
        raise ValueError("no sequences to summarise")
    succ = np.nanmean([s["success_curve"] for s in seqs], axis=0)
    prec = np.nanmean([s["precision_curve"] for s in seqs], axis=0)
    nprec = np.nanmean([s["norm_precision_curve"] for s in seqs], axis=0)
    pooled = np.concatenate([np.asarray(s["ao_ious"]) for s in seqs])
    timed = sum(int(s.get("timed_frames", 0)) for s in seqs)
    seconds = sum(float(s.get("time_s", 0.0)) for s in seqs)
    out: Dict[str, object] = {
        "sequences": len(seqs),
        "frames": int(sum(int(s["frames"]) for s in seqs)),
        "auc": float(succ.mean()),
        "precision": float(prec[20]),
        "norm_precision": float(nprec[20]),
        "ao": float(pooled.mean()) if pooled.size else float("nan"),
        "sr50": float((pooled > 0.5).mean()) if pooled.size else float("nan"),
        "sr75": float((pooled > 0.75).mean()) if pooled.size else float("nan"),
        "miou": float(np.nanmean([s["miou"] for s in seqs])),
        "fps": timed / seconds if seconds > 0 else float("nan"),
        "success_curve": succ,
        "precision_curve": prec,
        "norm_precision_curve": nprec,
    }
    js = [s["mask_j"] for s in seqs if np.isfinite(s.get("mask_j", np.nan))]
    if js:
        out["mask_j"] = float(np.mean(js))
    return out


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity J of two binary masks (1.0 when both are empty, as DAVIS does)."""
    a, b = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


#: Fewer sequences than this give no confidence interval, only a warning: a bootstrap over 1-4
#: paired differences has too few distinct resamples to mean anything.
MIN_SEQUENCES_FOR_CI = 5


def paired_bootstrap_ci(
    a: Sequence[float], b: Sequence[float], n: int = 10000, seed: int = 0, level: float = 0.95
) -> Dict[str, Any]:
    """Paired bootstrap over sequences of ``mean(b - a)`` (e.g. a = base AUC, b = refined AUC per
    sequence), with ``scipy.stats.bootstrap`` (``paired=True``, BCa interval).

    Returns ``{"mean", "low", "high", "p_le_0", "sequences", "warning"}``: the mean difference, the
    interval at ``level``, the fraction of resamples with a difference <= 0 and ``warning=None``.
    With fewer than :data:`MIN_SEQUENCES_FOR_CI` sequences ``low``, ``high`` and ``p_le_0`` are
    ``None`` and ``warning`` says why.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(
            f"a and b must be equal-length 1-D sequences of per-sequence scores; got {x.shape} and {y.shape}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a and b must be finite (drop sequences without a score first)")
    d = y - x
    out: Dict[str, Any] = {"mean": float(d.mean()), "low": None, "high": None, "p_le_0": None}
    out.update(sequences=int(d.size), warning=None)
    if d.size < MIN_SEQUENCES_FOR_CI:
        out["warning"] = (
            f"{d.size} sequence(s): too few for a confidence interval (need {MIN_SEQUENCES_FOR_CI}); "
            "the difference is shown without one"
        )
        return out
    if np.ptp(d) == 0:  # every sequence moved by the same amount: the interval is that point
        out.update(low=float(d[0]), high=float(d[0]), p_le_0=float(d[0] <= 0))
        return out
    import inspect
    import warnings

    from .._optional import require

    stats = require("scipy.stats")
    gen = np.random.default_rng(seed)
    seed_kw = {"rng": gen} if "rng" in inspect.signature(stats.bootstrap).parameters else {"random_state": gen}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.bootstrap(
            (x, y),
            _mean_difference,
            paired=True,
            vectorized=True,
            n_resamples=int(n),
            confidence_level=level,
            method="BCa",
            **seed_kw,
        )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    dist = np.asarray(res.bootstrap_distribution)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa undefined (e.g. heavy ties): percentile interval
        lo, hi = (float(v) for v in np.quantile(dist, [(1 - level) / 2, 1 - (1 - level) / 2]))
    out.update(low=lo, high=hi, p_le_0=float((dist <= 0).mean()))
    return out


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(y - x, axis=axis)
