"""One base tracker on one sequence: the plain run (plus the oracle refinement) and the refined run.

Frames are read in BGR (OpenCV's order) and the refiner is told so. Each run first seeds OpenCV's
RNG and the C library's ``rand()`` (:func:`seed_everything`; MIL samples randomly), so runs repeat
exactly, in any order, serial or in parallel; MIL under Ray excepted, as Ray's own threads draw
from the same ``rand()`` (``docs/ray.md``).
When the base tracker reports a failure (``ok=False`` or a box with no area on the image) the
previous output box is recorded for that frame.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ..boxes import MIN_SIZE, clip_box, round_box_for_opencv
from .datasets import Sequence
from .metrics import mask_iou


class TimedRefiner:
    """Forwards to a refiner and records the wall time of each ``refine`` call (ms)."""

    def __init__(self, refiner: Any) -> None:
        self._refiner = refiner
        self.times_ms: List[float] = []

    def initialize(self, *args: Any, **kwargs: Any) -> Any:
        return self._refiner.initialize(*args, **kwargs)

    def refine(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = self._refiner.refine(*args, **kwargs)
        self.times_ms.append((time.perf_counter() - t) * 1000.0)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_refiner"], name)


def _libc() -> Any:
    import ctypes
    import ctypes.util

    for name in (None, ctypes.util.find_library("c"), "msvcrt"):
        try:
            lib = ctypes.CDLL(name)
            if hasattr(lib, "srand"):
                return lib
        except OSError:
            continue
    return None


def seed_everything(seed: int) -> None:
    """Seed OpenCV's RNG and the C library's ``rand()``: OpenCV's MIL samples with ``rand()``, which
    ``cv2.setRNGSeed`` does not reach, so without ``srand`` a run depends on the runs before it."""
    from .._optional import require

    require("cv2").setRNGSeed(int(seed))
    lib = _libc()
    if lib is not None:
        lib.srand(int(seed) & 0xFFFFFFFF)


def weights_digest(refiner: Any) -> Optional[str]:
    """sha256 of what decides a refiner's answers: every tensor of its network (name, dtype, shape,
    bytes), its config and its engine (class, precision, device). Resume is keyed on it, so
    weights replaced in place (same path, new bytes) are never mistaken for the old ones."""
    import hashlib
    import json

    import torch

    net = getattr(refiner, "net", None)
    if net is None or not hasattr(net, "state_dict"):
        return None
    h = hashlib.sha256()
    for name, t in sorted(net.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    cfg = getattr(refiner, "config", None)
    if cfg is not None and hasattr(cfg, "to_dict"):
        h.update(json.dumps(cfg.to_dict(), sort_keys=True, default=str).encode())
    engine = getattr(refiner, "engine", None)
    h.update(f"{type(engine).__qualname__}|{getattr(engine, 'precision', '')}|{getattr(engine, 'device', '')}".encode())
    return h.hexdigest()


def sequence_digest(seq: Sequence, n: int) -> str:
    """sha256 of the first ``n`` frames' identity (file names and sizes, or the video's), the
    ground-truth rows and absence flags, and the mask files: a sequence edited in place resumes
    nothing stale."""
    import hashlib
    import os

    h = hashlib.sha256()
    files = list(seq.frame_paths[:n]) if seq.frame_paths else [seq.path]
    files += list(seq.mask_paths[:n]) if seq.mask_paths else []
    for p in files:
        try:
            size = os.stat(p).st_size
        except OSError:
            size = -1
        h.update(f"{os.path.basename(str(p))}|{size}\n".encode())
    h.update(np.ascontiguousarray(seq.gt[:n], dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(seq.absent[:n], dtype=bool).tobytes())
    return h.hexdigest()


def _valid_box(box: Any, hw: Any) -> Optional[np.ndarray]:
    from ..adapters.base import usable

    if not usable(box, hw):
        return None
    return np.asarray(box, dtype=np.float64).reshape(4).copy()


def _init_box_for(tracker: Any, box: np.ndarray, hw: Any) -> Any:
    """Integer box for OpenCV's own trackers (the new API refuses floats, legacy Boosting crashes on
    them), as the adapter gives them; floats for anything else."""
    from ..adapters.detect import is_opencv_tracker
    from ..adapters.opencv import OPENCV_MIN_SIDE

    if is_opencv_tracker(tracker):
        return round_box_for_opencv(clip_box(box, hw, float(OPENCV_MIN_SIDE)), hw)
    return tuple(float(v) for v in box)


def oracle_input(gt: np.ndarray, tracked: np.ndarray) -> np.ndarray:
    """The oracle experiment's refiner input: the tracker's size centred on the ground-truth centre."""
    cx, cy = gt[0] + gt[2] / 2, gt[1] + gt[3] / 2
    return np.array([cx - tracked[2] / 2, cy - tracked[3] / 2, tracked[2], tracked[3]])


def run_base(
    seq: Sequence, n: int, factory: Callable[[], Any], seed: int, oracle_refiner: Any = None
) -> Dict[str, Dict[str, Any]]:
    """Plain base tracker; with ``oracle_refiner`` also refine the oracle input on every frame."""
    seed_everything(seed)
    tracker = factory()
    frame = seq.frame(0, "BGR")
    hw = frame.shape[:2]
    init = seq.init_box
    tracker.init(frame, _init_box_for(tracker, init, hw))
    boxes, times = [init], [float("nan")]
    o_in, o_out, timed = [init], [init], None
    if oracle_refiner is not None:
        timed = TimedRefiner(oracle_refiner)
        timed.initialize(frame, init, image_format="BGR")
    for i in range(1, n):
        frame = seq.frame(i, "BGR")
        t = time.perf_counter()
        ok, box = tracker.update(frame)
        times.append(time.perf_counter() - t)
        b = _valid_box(box, hw) if ok else None
        boxes.append(b if b is not None else boxes[-1])
        if timed is not None:
            gt = seq.gt[i]
            inp = oracle_input(gt, boxes[-1]) if np.isfinite(gt).all() else boxes[-1]
            o_in.append(inp)
            o_out.append(clip_box(timed.refine(frame, inp, image_format="BGR").box, hw, MIN_SIZE))
    out = {"base": {"boxes": np.array(boxes), "times": np.array(times)}}
    if timed is not None:  # times: the tracker's, plus the refiner's for the refined oracle row
        refine_s = np.array([0.0] + [ms / 1000.0 for ms in timed.times_ms])
        out["oracle_in"] = {"boxes": np.array(o_in), "times": np.array(times)}
        out["oracle"] = {
            "boxes": np.array(o_out),
            "times": np.array(times) + refine_s,
            "refine_ms": np.array(timed.times_ms),
        }
    return out


def run_refined(
    seq: Sequence,
    n: int,
    factory: Callable[[], Any],
    refiner: Any,
    seed: int,
    with_mask: bool,
    write_back: Any = "auto",
) -> Dict[str, Any]:
    """Base tracker wrapped in :class:`~alpharefine_sdk.RefinedTracker` (``write_back`` as given)."""
    from ..adapters import RefinedTracker

    seed_everything(seed)
    timed = TimedRefiner(refiner)
    rt = RefinedTracker(factory, timed, kind="opencv", write_back=write_back, mask=with_mask, min_size=MIN_SIZE)
    frame = seq.frame(0, "BGR")
    hw = frame.shape[:2]
    init = seq.init_box
    rt.init(frame, init)
    boxes, times, js, gated, refined, degenerate = [init], [float("nan")], [], 0, 0, 0
    for i in range(1, n):
        frame = seq.frame(i, "BGR")
        t = time.perf_counter()
        ok, _ = rt.update(frame)
        times.append(time.perf_counter() - t)
        res = rt.last_result
        b = rt.last_box if (ok and res is not None) else (_valid_box(rt.last_box, hw) if ok else None)
        boxes.append(np.asarray(b, dtype=np.float64) if b is not None else boxes[-1])
        if res is not None:
            refined += 1
            reason = getattr(res, "reason", None) or ""
            gated += bool(getattr(res, "gated", False))
            degenerate += reason.startswith("degenerate")
        if with_mask and seq.mask_paths is not None:
            gt_mask = seq.mask(i)
            if gt_mask.any():
                pred = rt.last_mask > 0.5 if rt.last_mask is not None else np.zeros_like(gt_mask)
                js.append(mask_iou(pred, gt_mask))
    return {
        "boxes": np.array(boxes),
        "times": np.array(times),
        "refine_ms": np.array(timed.times_ms),
        "mask_j": np.array(js),
        "refined_frames": refined,
        "gated_frames": gated,  # the input box was kept (by the gate, or the network's box was degenerate)
        "degenerate_frames": degenerate,  # of those, the network's box was degenerate
    }
