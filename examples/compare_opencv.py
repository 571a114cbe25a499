"""Mean IoU of OpenCV trackers with and without Alpha-Refine on the shared dev sequences.

    python examples/compare_opencv.py [--data ../shared/data/sequences] [--trackers mil,csrt,kcf,nano] [--max-frames N] [--json out.json]

Each tracker starts from the first ground-truth box; the mean IoU (continuous, the got10k
convention) is over all later frames, and a frame where the base reports failure scores 0.
VOT rotated boxes are compared as their axis-aligned bounding rectangles. "refined" wraps the
same tracker in ``RefinedTracker`` with the default write-back policy. The eval CLI
(``alpharefine-sdk eval``) may supersede this script.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import cv2
import numpy as np

from alpharefine_sdk import RefinedTracker, Refiner
from alpharefine_sdk.adapters import opencv_tracker
from alpharefine_sdk.boxes import iou

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def read_gt(path: Path) -> np.ndarray:
    rows = [
        [float(v) for v in line.replace("\t", ",").split(",") if v.strip()]
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    gt = np.array(rows, dtype=np.float64)
    if gt.shape[1] == 8:  # VOT polygon -> axis-aligned bounding rectangle
        xs, ys = gt[:, 0::2], gt[:, 1::2]
        gt = np.stack([xs.min(1), ys.min(1), xs.max(1) - xs.min(1), ys.max(1) - ys.min(1)], axis=1)
    return gt


def dev_sequences(root: Path) -> List[Tuple[str, List[Path], np.ndarray]]:
    """The 7 dev sequences (OTB, VOT, GOT-10k, LaSOT and DAVIS layouts) as (name, frames, gt)."""
    seqs = []
    for d in sorted((root / "otb").iterdir()):
        seqs.append((d.name, sorted((d / "img").glob("*.jpg")), read_gt(d / "groundtruth_rect.txt")))
    for d in sorted((root / "vot").iterdir()):
        seqs.append((d.name, sorted((d / "color").glob("*.jpg")), read_gt(d / "groundtruth.txt")))
    for d in sorted((root / "got10k").iterdir()):
        seqs.append((d.name, sorted(d.glob("*.jpg")), read_gt(d / "groundtruth.txt")))
    for d in sorted((root / "lasot").iterdir()):
        seqs.append((d.name, sorted((d / "img").glob("*.jpg")), read_gt(d / "groundtruth.txt")))
    for f in sorted((root / "davis" / "boxes").glob("*.txt")):
        seqs.append((f.stem, sorted((root / "davis/JPEGImages/480p" / f.stem).glob("*.jpg")), read_gt(f)))
    for name, frames, gt in seqs:
        if len(frames) != len(gt):
            raise ValueError(f"{name}: {len(frames)} frames but {len(gt)} boxes")
    return seqs


def run(tracker: Any, frames: List[np.ndarray], gt: np.ndarray) -> Tuple[float, float]:
    """Mean IoU over frames 1.. and seconds per frame."""
    tracker.init(frames[0], tuple(int(round(v)) for v in gt[0]) if not isinstance(tracker, RefinedTracker) else gt[0])
    ious, t0 = [], time.perf_counter()
    for f, g in zip(frames[1:], gt[1:]):
        ok, box = tracker.update(f)
        ious.append(iou(box, g) if ok else 0.0)
    return float(np.mean(ious)), (time.perf_counter() - t0) / max(1, len(frames) - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--weights",
        default=None,
        help="model folder, original .pth.tar or Hub repo id (default: the packaged default model)",
    )
    ap.add_argument("--data", default=str(DATA / "sequences"), help="folder with otb/ vot/ got10k/ lasot/ davis/")
    ap.add_argument(
        "--nano",
        default=str(DATA / "nanotrack_onnx" / "v2"),
        help="folder with NanoTrack backbone.onnx and neckhead.onnx",
    )
    ap.add_argument("--trackers", default="mil,csrt,kcf,nano")
    ap.add_argument("--max-frames", type=int, default=0, help="use only the first N frames of each sequence (0 = all)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--json", default=None, help="also write the table here")
    args = ap.parse_args()

    refiner = Refiner.from_pretrained(args.weights, device=args.device)
    options: Dict[str, Dict[str, str]] = {
        "nano": {"backbone": f"{args.nano}/backbone.onnx", "neckhead": f"{args.nano}/neckhead.onnx"}
    }
    names = [n.strip() for n in args.trackers.split(",") if n.strip()]
    seqs = dev_sequences(Path(args.data))
    table: Dict[str, Dict[str, Dict[str, float]]] = {}
    print(f"weights: {args.weights or 'packaged default'}   OpenCV {cv2.__version__}")
    print(f"{'tracker':8s} {'sequence':12s} {'base':>6s} {'refined':>8s} {'ms/f base':>10s} {'ms/f ref':>9s}")
    for name in names:
        table[name] = {}
        for seq, files, gt in seqs:
            if args.max_frames:
                files, gt = files[: args.max_frames], gt[: args.max_frames]
            frames = [cv2.imread(str(p)) for p in files]
            base_iou, base_t = run(opencv_tracker(name, **options.get(name, {})), frames, gt)
            wrapped = RefinedTracker(
                lambda: opencv_tracker(name, **options.get(name, {})), refiner.clone(), as_int=False
            )
            ref_iou, ref_t = run(wrapped, frames, gt)
            table[name][seq] = {
                "base": base_iou,
                "refined": ref_iou,
                "ms_base": 1e3 * base_t,
                "ms_refined": 1e3 * ref_t,
            }
            print(
                f"{name:8s} {seq:12s} {base_iou:6.3f} {ref_iou:8.3f} {1e3 * base_t:10.1f} {1e3 * ref_t:9.1f}",
                flush=True,
            )
        b = np.mean([v["base"] for v in table[name].values()])
        r = np.mean([v["refined"] for v in table[name].values()])
        print(f"{name:8s} {'MEAN':12s} {b:6.3f} {r:8.3f}", flush=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"weights": args.weights, "max_frames": args.max_frames, "opencv": cv2.__version__, "results": table},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
