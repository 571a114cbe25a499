"""Refine a got10k-toolkit tracker and run it with the toolkit's own loop (PIL RGB images).

    python examples/got10k_tracker.py [--sequence ../shared/data/sequences/got10k/bmx-trees] [--frames 20]

The wrapped tracker is itself a ``got10k.trackers.Tracker``, so ``ExperimentGOT10k(...).run(tracker)``
works the same way. Needs ``pip install "alpharefine-sdk[eval]"`` (got10k) and an OpenCV wheel.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from got10k.trackers import Tracker

from alpharefine_sdk import RefinedTracker, Refiner
from alpharefine_sdk.boxes import iou

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


class MILTracker(Tracker):
    """An ordinary got10k tracker: OpenCV MIL behind the toolkit's init/update protocol."""

    def __init__(self) -> None:
        super().__init__(name="MIL", is_deterministic=True)

    def init(self, image, box) -> None:
        self.cv = cv2.TrackerMIL.create()
        self.cv.init(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR), tuple(int(round(v)) for v in box))

    def update(self, image) -> np.ndarray:
        _, box = self.cv.update(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))
        return np.array(box, dtype=np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--weights",
        default=None,
        help="model folder, original .pth.tar or Hub repo id (default: the packaged default model)",
    )
    ap.add_argument("--sequence", default=str(DATA / "sequences" / "got10k" / "bmx-trees"))
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()

    seq = Path(args.sequence)
    files = [str(p) for p in sorted(seq.glob("*.jpg"))][: args.frames]
    gt = np.loadtxt(seq / "groundtruth.txt", delimiter=",")[: len(files)]

    tracker = RefinedTracker(MILTracker(), Refiner.from_pretrained(args.weights))  # one line
    boxes, times = tracker.track(files, gt[0])  # got10k's loop
    print(
        f"{tracker.name} on {seq.name}: mean IoU {np.mean([iou(b, g) for b, g in zip(boxes[1:], gt[1:])]):.3f}, "
        f"{1e3 * times[1:].mean():.0f} ms/frame"
    )


if __name__ == "__main__":
    main()
