"""Refine an OpenCV tracker on a folder of frames: one changed line in an ordinary OpenCV loop.

    python examples/opencv_tracker.py [--tracker csrt] [--sequence ../shared/data/sequences/otb/Crossing] [--frames 30] [--out out.mp4]

``--tracker``: mil, csrt, kcf (contrib wheel), nano (``--nano`` folder with the two ONNX files),
vit, dasiamrpn (their model files as in ``opencv_tracker``). Prints the mean IoU against the
sequence's ground truth (OTB ``groundtruth_rect.txt`` or a GOT-10k/LaSOT ``groundtruth.txt``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from alpharefine_sdk import RefinedTracker, Refiner
from alpharefine_sdk.adapters import opencv_tracker
from alpharefine_sdk.boxes import iou

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--weights",
        default=None,
        help="model folder, original .pth.tar or Hub repo id (default: the packaged default model)",
    )
    ap.add_argument("--tracker", default="csrt")
    ap.add_argument("--sequence", default=str(DATA / "sequences" / "otb" / "Crossing"))
    ap.add_argument("--nano", default=str(DATA / "nanotrack_onnx" / "v2"))
    ap.add_argument("--frames", type=int, default=30, help="how many frames to run (0 = all)")
    ap.add_argument("--out", default=None, help="write an .mp4 with base (red) and refined (green) boxes")
    args = ap.parse_args()

    seq = Path(args.sequence)
    files = sorted((seq / "img").glob("*.jpg")) or sorted(seq.glob("*.jpg"))
    gt_file = next(p for p in (seq / "groundtruth_rect.txt", seq / "groundtruth.txt") if p.exists())
    gt = np.loadtxt(gt_file, delimiter=",")
    if args.frames:
        files, gt = files[: args.frames], gt[: args.frames]

    options = {}
    if args.tracker == "nano":
        options = {"backbone": f"{args.nano}/backbone.onnx", "neckhead": f"{args.nano}/neckhead.onnx"}
    refiner = Refiner.from_pretrained(args.weights)

    # The only change to an OpenCV loop: wrap the tracker (or its factory) in RefinedTracker.
    tracker = RefinedTracker(lambda: opencv_tracker(args.tracker, **options), refiner)

    writer, ious_ref, ious_base = None, [], []
    for i, (path, g) in enumerate(zip(files, gt)):
        frame = cv2.imread(str(path))  # BGR, as OpenCV trackers expect
        if i == 0:
            tracker.init(frame, tuple(g))
            continue
        ok, box = tracker.update(frame)  # ints, like the OpenCV tracker it wraps
        ious_ref.append(iou(tracker.last_box, g) if ok else 0.0)
        ious_base.append(iou(tracker.last_base_box, g) if ok else 0.0)
        if args.out:
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
            cv2.rectangle(frame, tuple(int(v) for v in tracker.last_base_box), (0, 0, 255), 1)
            cv2.rectangle(frame, box, (0, 255, 0), 2)
            writer.write(frame)
    if writer is not None:
        writer.release()
    print(f"{args.tracker} on {seq.name}, {len(files)} frames, weights {args.weights or 'packaged default'}")
    print(f"mean IoU of the base box on each frame:    {np.mean(ious_base):.3f}  (the base tracker's own box)")
    print(f"mean IoU of the refined box:               {np.mean(ious_ref):.3f}")


if __name__ == "__main__":
    main()
