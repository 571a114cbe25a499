"""``alpharefine-sdk track VIDEO_OR_FRAME_FOLDER --tracker csrt --init x,y,w,h -o out.mp4``: run a base
tracker wrapped in the refiner on a video (or a folder of frames / a sequence folder) and write a video
with the base box, the refined box and the mask overlay, plus the boxes as text. Headless."""

from __future__ import annotations

import argparse
from typing import Any, Optional, Tuple

from ._options import WRITE_BACK, add_quiet, add_tracker_opt, add_weights, add_write_back, show_progress

BASE_COLOUR = (0, 0, 255)  # BGR red: the base tracker's box
REFINED_COLOUR = (0, 220, 0)  # green: the refined box
MASK_COLOUR = (255, 128, 0)  # blue tint: the mask overlay
GT_COLOUR = (255, 255, 255)  # white: ground truth, where the sequence has one
CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "track",
        help="track a video with a refined base tracker and write an annotated video",
        description="Base box (red), refined box (green) and mask overlay (blue) drawn on every frame; the boxes "
        "are also written as text (x,y,w,h per line) beside the video.",
    )
    p.add_argument(
        "source",
        nargs="?",
        default=None,
        help="video file, folder of frames, or a sequence folder (OTB/LaSOT/GOT-10k/VOT/DAVIS; default: the "
        "sample sequence data/Crossing of a source checkout)",
    )
    p.add_argument(
        "--tracker", "-t", default="csrt", help="base tracker: mil, csrt, kcf, nano, vit, dasiamrpn or module:factory"
    )
    add_tracker_opt(p)
    p.add_argument(
        "--init", default=None, metavar="X,Y,W,H", help="box on the first frame (default: the sequence's ground truth)"
    )
    p.add_argument(
        "--output",
        "-o",
        default="alpharefine-track.mp4",
        help="output video, .mp4 or .avi (default alpharefine-track.mp4)",
    )
    add_weights(p)
    p.add_argument("--no-mask", action="store_true", help="do not compute or draw the mask")
    add_write_back(p)
    p.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    p.add_argument("--fps", type=float, default=None, help="output frame rate (default: the video's, or 30)")
    p.add_argument("--seed", type=int, default=0, help="OpenCV RNG seed (MIL is randomised)")
    p.add_argument("--device", default=None, help="refiner device (default: cuda if available, else cpu)")
    add_quiet(p)
    p.set_defaults(func=run)


def parse_box(text: str) -> Tuple[float, float, float, float]:
    parts = [v for v in text.replace(" ", ",").split(",") if v]
    try:
        vals = tuple(float(v) for v in parts)
    except ValueError:
        vals = ()
    if len(vals) != 4 or vals[2] <= 0 or vals[3] <= 0:
        raise ValueError(
            f"--init {text!r}: give the first frame's box as x,y,w,h with w, h > 0, e.g. --init 205,151,17,50"
        )
    return vals  # type: ignore[return-value]


def _writer(path: str, fps: float, size: Tuple[int, int]) -> Any:
    from pathlib import Path

    import cv2

    ext = Path(path).suffix.lower()
    codecs = CODECS
    if ext not in codecs:
        raise ValueError(f"--output {path!r}: use a .mp4 or .avi file name")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codecs[ext]), fps, size)
    if not w.isOpened():
        raise RuntimeError(f"cannot write {path}: this OpenCV build has no {codecs[ext]} encoder; try an .avi output")
    return w


def _draw_box(img: Any, box: Any, colour: Tuple[int, int, int], thickness: int) -> None:
    import cv2
    import numpy as np

    if box is None or not np.isfinite(box).all():
        return
    x, y, w, h = (float(v) for v in box)
    cv2.rectangle(
        img, (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h))), colour, thickness, cv2.LINE_AA
    )


def draw(frame: Any, base: Any, refined: Any, mask: Any, gt: Any = None, index: int = 0) -> Any:
    """Annotated copy of a BGR frame: mask overlay, ground truth, base and refined boxes, boxes as text."""
    import cv2
    import numpy as np

    img = frame.copy()
    if mask is not None:
        m = mask > 0.5
        img[m] = (0.5 * img[m] + 0.5 * np.array(MASK_COLOUR)).astype(np.uint8)
    _draw_box(img, gt, GT_COLOUR, 1)
    _draw_box(img, base, BASE_COLOUR, 2)
    _draw_box(img, refined, REFINED_COLOUR, 2)
    fmt = lambda b: "lost" if b is None or not np.isfinite(b).all() else ",".join(f"{v:.0f}" for v in b)  # noqa: E731
    lines = ((f"#{index}", GT_COLOUR), (f"base {fmt(base)}", BASE_COLOUR), (f"refined {fmt(refined)}", REFINED_COLOUR))
    width = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0] for t, _ in lines)
    cv2.rectangle(img, (2, 2), (min(img.shape[1] - 1, 12 + width), 8 + 18 * len(lines)), (0, 0, 0), -1)
    for k, (txt, colour) in enumerate(lines):
        cv2.putText(img, txt, (6, 18 + 18 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return img


def _source(path: str, init: Optional[Tuple[float, ...]]) -> Any:
    from pathlib import Path

    from ..eval.datasets import detect_kind, load_sequence

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"source not found: {path}")
    if detect_kind(p) is not None and init is None:
        return load_sequence(p)
    if init is None:
        raise ValueError(f"{path} has no ground truth to start from: pass the first frame's box with --init x,y,w,h")
    seq = load_sequence(p, init_box=init)
    seq.gt[0] = init  # --init wins over a sequence's own first box
    return seq


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np
    from tqdm.auto import tqdm

    from .._optional import require
    from ..adapters import RefinedTracker
    from ..eval.runs import seed_everything
    from ..eval.trackers import make_factory, parse_options
    from ..refiner import Refiner
    from ._sample import sample_sequence

    cv2 = require("cv2")
    if args.source is None:
        args.source = str(sample_sequence())
    init = parse_box(args.init) if args.init else None
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1; got {args.max_frames}")
    seq = _source(args.source, init)
    factory = make_factory(args.tracker, parse_options(args.tracker_opt, [args.tracker])[args.tracker])
    if Path(args.output).suffix.lower() not in CODECS:
        raise ValueError(f"--output {args.output!r}: use a .mp4 or .avi file name")
    refiner = Refiner.from_pretrained(args.weights, device=args.device)
    n = len(seq) if args.max_frames is None else min(len(seq), args.max_frames)
    fps = args.fps
    if fps is None and seq.kind == "video":
        cap = cv2.VideoCapture(str(seq.path))
        fps = cap.get(cv2.CAP_PROP_FPS) or None
        cap.release()
    fps = fps or 30.0
    seed_everything(args.seed)
    tracker = RefinedTracker(
        factory, refiner, kind="opencv", write_back=WRITE_BACK[args.write_back], mask=not args.no_mask
    )
    out = Path(args.output)
    base_rows, refined_rows = [], []
    writer = None
    lost = 0
    try:
        for i, frame in enumerate(
            tqdm(seq.frames("BGR", stop=n), total=n, desc="track", unit="frame", disable=not show_progress(args.quiet))
        ):
            if writer is None:
                writer = _writer(str(out), fps, (frame.shape[1], frame.shape[0]))
            gt = seq.gt[i] if np.isfinite(seq.gt[i]).all() else None
            if i == 0:
                tracker.init(frame, seq.init_box)
                base = refined = seq.init_box
                mask = None
            else:
                ok, _ = tracker.update(frame)
                base = tracker.last_base_box
                refined = tracker.last_box if ok else None
                mask = tracker.last_mask if ok else None
                lost += not ok
            base_rows.append(base if base is not None else np.full(4, np.nan))
            refined_rows.append(refined if refined is not None else np.full(4, np.nan))
            writer.write(draw(frame, base, refined, mask, gt if i else None, i))
    finally:
        if writer is not None:
            writer.release()
    stem = out.with_suffix("")
    np.savetxt(f"{stem}_base.txt", np.array(base_rows), fmt="%.4f", delimiter=",")
    np.savetxt(f"{stem}_refined.txt", np.array(refined_rows), fmt="%.4f", delimiter=",")
    print(
        f"wrote {out} ({n} frames, {fps:g} fps; base box red, refined green, mask blue); "
        f"boxes in {stem}_base.txt and {stem}_refined.txt"
        + (f"; base tracker lost the target on {lost} frames" if lost else "")
    )
    return 0
