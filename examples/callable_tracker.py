"""Refine the box of any function ``fn(frame) -> (x, y, w, h)``: here a template matcher.

python examples/callable_tracker.py [--sequence ../shared/data/sequences/lasot/soapbox] [--frames 20]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from alpharefine_sdk import RefinedTracker, Refiner
from alpharefine_sdk.boxes import iou

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def template_matcher(first_frame: np.ndarray, box) -> callable:
    """A stateless box source: where the first-frame template matches best in the whole frame."""
    x, y, w, h = (int(round(v)) for v in box)
    template = first_frame[y : y + h, x : x + w]

    def find(frame: np.ndarray):
        res = cv2.matchTemplate(frame, template, cv2.TM_CCOEFF_NORMED)
        _, _, _, (mx, my) = cv2.minMaxLoc(res)
        return (mx, my, w, h)

    return find


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--weights",
        default=None,
        help="model folder, original .pth.tar or Hub repo id (default: the packaged default model)",
    )
    ap.add_argument("--sequence", default=str(DATA / "sequences" / "lasot" / "soapbox"))
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()

    seq = Path(args.sequence)
    files = sorted((seq / "img").glob("*.jpg"))[: args.frames]
    gt = np.loadtxt(seq / "groundtruth.txt", delimiter=",")[: len(files)]
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in files]  # RGB

    tracker = RefinedTracker(template_matcher(frames[0], gt[0]), Refiner.from_pretrained(args.weights))
    tracker.init(frames[0], gt[0])  # the refiner needs the target's first-frame template
    base, refined = [], []
    for frame, g in zip(frames[1:], gt[1:]):
        box = tracker(frame)  # refined (x, y, w, h), float64
        base.append(iou(tracker.last_base_box, g))
        refined.append(iou(box, g))
    print(f"template matcher on {seq.name}: mean IoU {np.mean(base):.3f} base, {np.mean(refined):.3f} refined")


if __name__ == "__main__":
    main()
