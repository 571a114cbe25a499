"""What the web demo computes, without the web page: one clip tracked by a base tracker wrapped in the
refiner (base box, refined box and mask per frame), per-frame IoU against ground truth when there is
some, the side-by-side view of a frame, and the files to download."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ..boxes import MIN_SIZE, is_usable

TRACKERS = ("csrt", "kcf", "mil")  # the OpenCV trackers that need no model files


@dataclass
class DemoRun:
    """One tracked clip. Boxes are ``[N, 4]`` float64 ``x, y, w, h``; ``iou_*`` are ``[N]`` (NaN where
    the ground truth is missing) or ``None`` without ground truth; masks are kept bit-packed."""

    tracker: str
    source: str
    base: np.ndarray
    refined: np.ndarray
    gt: Optional[np.ndarray]
    iou_base: Optional[np.ndarray]
    iou_refined: Optional[np.ndarray]
    masks: List[Optional[np.ndarray]] = field(repr=False)
    frame_paths: List[str] = field(repr=False)
    shape: tuple = (0, 0)
    files: Dict[str, Path] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.base.shape[0])

    def mask(self, i: int) -> Optional[np.ndarray]:
        packed = self.masks[i]
        if packed is None:
            return None
        h, w = self.shape
        return np.unpackbits(packed, count=h * w).reshape(h, w).astype(bool)

    def summary(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"tracker": self.tracker, "source": self.source, "frames": len(self)}
        if self.iou_base is not None and self.iou_refined is not None:
            out["mean_iou_base"] = float(np.nanmean(self.iou_base[1:])) if len(self) > 1 else None
            out["mean_iou_refined"] = float(np.nanmean(self.iou_refined[1:])) if len(self) > 1 else None
        return out

    def to_dict(self) -> Dict[str, Any]:
        def rows(a: Optional[np.ndarray]) -> Any:
            if a is None:
                return None
            return (
                [[None if not np.isfinite(v) else round(float(v), 4) for v in r] for r in np.atleast_2d(a)]
                if a.ndim == 2
                else [None if not np.isfinite(v) else round(float(v), 6) for v in a]
            )

        return {
            **self.summary(),
            "base": rows(self.base),
            "refined": rows(self.refined),
            "gt": rows(self.gt),
            "iou_base": rows(self.iou_base),
            "iou_refined": rows(self.iou_refined),
        }


def parse_box(text: str) -> np.ndarray:
    """``"x,y,w,h"`` (commas or spaces) -> box; one clear error otherwise."""
    parts = [v for v in str(text or "").replace(",", " ").split() if v]
    try:
        vals = [float(v) for v in parts]
    except ValueError:
        vals = []
    if len(vals) != 4 or not is_usable(vals):
        raise ValueError(f"first box {text!r}: type x,y,w,h with w, h > 0 (e.g. 205,151,17,50), or click two corners")
    return np.array(vals, dtype=np.float64)


def track_clip(
    seq: Any,
    init_box: Any,
    tracker: str,
    refiner: Any,
    *,
    max_frames: Optional[int] = None,
    gt: Optional[np.ndarray] = None,
    write_back: Any = "auto",
    seed: int = 0,
    progress: Optional[Callable[[int, int], None]] = None,
) -> DemoRun:
    """Track ``seq`` (an :class:`~alpharefine_sdk.eval.Sequence`) from ``init_box`` with ``tracker``
    wrapped in a clone of ``refiner`` (mask on); the refined boxes are exactly those of
    ``alpharefine-sdk eval``'s ``+AR`` run (same seeding and failure rule)."""
    from ..adapters import RefinedTracker
    from ..eval.metrics import rect_iou
    from ..eval.runs import _valid_box, seed_everything
    from ..eval.trackers import make_factory

    if tracker not in TRACKERS:
        raise ValueError(f"tracker {tracker!r}: choose one of {', '.join(TRACKERS)}")
    n = len(seq) if max_frames is None else min(len(seq), int(max_frames))
    if n < 2:
        raise ValueError(f"the clip has {n} frame(s); the demo needs at least 2 (frame 0 initialises the tracker)")
    init = np.asarray(init_box, dtype=np.float64).reshape(4)
    frame = seq.frame(0, "BGR")
    hw = frame.shape[:2]
    if init[0] >= hw[1] or init[1] >= hw[0] or init[0] + init[2] <= 0 or init[1] + init[3] <= 0:
        raise ValueError(f"first box {init.tolist()} lies outside the {hw[1]}x{hw[0]} frame")
    seed_everything(seed)
    rt = RefinedTracker(
        make_factory(tracker), refiner.clone(), kind="opencv", write_back=write_back, mask=True, min_size=MIN_SIZE
    )
    rt.init(frame, init)
    base, refined, masks = [init], [init], [None]
    for i in range(1, n):
        frame = seq.frame(i, "BGR")
        ok, _ = rt.update(frame)
        res = rt.last_result
        b = rt.last_box if (ok and res is not None) else (_valid_box(rt.last_box, hw) if ok else None)
        refined.append(np.asarray(b, dtype=np.float64) if b is not None else refined[-1])
        bb = _valid_box(rt.last_base_box, hw) if ok and rt.last_base_box is not None else None
        base.append(bb if bb is not None else base[-1])
        m = rt.last_mask if (ok and res is not None) else None
        masks.append(np.packbits(m > 0.5) if m is not None else None)
        if progress is not None:
            progress(i, n)
    B, R = np.array(base), np.array(refined)
    g = None if gt is None else np.asarray(gt, dtype=np.float64)[:n]
    ib = ir = None
    if g is not None:
        if g.shape != (n, 4):
            raise ValueError(f"ground truth has {len(g)} boxes for {n} frames; give one x,y,w,h line per frame")
        ok_rows = np.isfinite(g).all(axis=1)
        ib, ir = np.full(n, np.nan), np.full(n, np.nan)
        ib[ok_rows] = rect_iou(B[ok_rows], g[ok_rows])
        ir[ok_rows] = rect_iou(R[ok_rows], g[ok_rows])
    return DemoRun(
        tracker, str(seq.path), B, R, g, ib, ir, masks, [str(p) for p in seq.frame_paths[:n]], shape=tuple(hw)
    )


def side_by_side(run: DemoRun, seq: Any, i: int) -> np.ndarray:
    """Frame ``i`` twice, as RGB: the base box (left) and the refined box with the mask (right);
    the ground truth (white) on both."""
    import cv2

    from ..cli.track import BASE_COLOUR, GT_COLOUR, MASK_COLOUR, REFINED_COLOUR, _draw_box

    i = int(np.clip(i, 0, len(run) - 1))
    frame = seq.frame(i, "BGR")
    left, right = frame.copy(), frame.copy()
    m = run.mask(i)
    if m is not None:
        right[m] = (0.5 * right[m] + 0.5 * np.array(MASK_COLOUR)).astype(np.uint8)
    gt = run.gt[i] if run.gt is not None and np.isfinite(run.gt[i]).all() else None
    for img in (left, right):
        _draw_box(img, gt, GT_COLOUR, 1)
    _draw_box(left, run.base[i], BASE_COLOUR, 2)
    _draw_box(right, run.refined[i], REFINED_COLOUR, 2)
    for img, text, colour in (
        (left, f"#{i} {run.tracker}", BASE_COLOUR),
        (right, f"#{i} {run.tracker}+AR", REFINED_COLOUR),
    ):
        h = img.shape[0]  # bottom left: the page puts its own label top left
        cv2.rectangle(img, (0, h - 26), (12 + 11 * len(text), h), (0, 0, 0), -1)
        cv2.putText(img, text, (6, h - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2, cv2.LINE_AA)
    out = np.concatenate([left, np.full((frame.shape[0], 8, 3), 255, np.uint8), right], axis=1)
    return np.ascontiguousarray(out[:, :, ::-1])


def write_files(run: DemoRun, seq: Any, folder: Path, *, video: bool = True) -> Dict[str, Path]:
    """``results.json`` (boxes, IoU, means), ``boxes.csv`` (one row per frame) and, with ``video``,
    ``side_by_side.avi`` (MJPG) in ``folder``; returns ``{name: path}`` (also kept on ``run.files``)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"results.json": folder / "results.json", "boxes.csv": folder / "boxes.csv"}
    files["results.json"].write_text(json.dumps(run.to_dict()))
    head = "frame,base_x,base_y,base_w,base_h,refined_x,refined_y,refined_w,refined_h,iou_base,iou_refined"
    lines = [head]
    for i in range(len(run)):
        ious = [
            "" if run.iou_base is None or not np.isfinite(run.iou_base[i]) else f"{run.iou_base[i]:.4f}",
            "" if run.iou_refined is None or not np.isfinite(run.iou_refined[i]) else f"{run.iou_refined[i]:.4f}",
        ]
        lines.append(
            ",".join([str(i)] + [f"{v:.4f}" for v in run.base[i]] + [f"{v:.4f}" for v in run.refined[i]] + ious)
        )
    files["boxes.csv"].write_text("\n".join(lines) + "\n")
    if video:
        import cv2

        path = folder / "side_by_side.avi"
        first = side_by_side(run, seq, 0)
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (first.shape[1], first.shape[0]))
        if w.isOpened():
            try:
                for i in range(len(run)):
                    w.write(np.ascontiguousarray(side_by_side(run, seq, i)[:, :, ::-1]))
            finally:
                w.release()
            files["side_by_side.avi"] = path
    run.files = files
    return files
