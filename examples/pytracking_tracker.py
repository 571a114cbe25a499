"""Refine a pytracking tracker (DiMP, PrDiMP, ATOM, ECO...). Needs a pytracking checkout on
PYTHONPATH with its networks downloaded (pytracking is not on the package index):

    PYTHONPATH=/path/to/pytracking python examples/pytracking_tracker.py --tracker dimp --param dimp50 --sequence ../shared/data/sequences/otb/Crossing
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from alpharefine_sdk import RefinedTracker, Refiner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--weights",
        default=None,
        help="model folder, original .pth.tar or Hub repo id (default: the packaged default model)",
    )
    ap.add_argument("--tracker", default="dimp")
    ap.add_argument("--param", default="dimp50")
    ap.add_argument("--sequence", required=True)
    args = ap.parse_args()
    try:
        from pytracking.evaluation import Tracker
    except ImportError:
        sys.exit("pytracking is not importable: clone github.com/visionml/pytracking and put it on PYTHONPATH")

    factory = Tracker(args.tracker, args.param)
    base = factory.create_tracker(factory.get_parameters())

    tracker = RefinedTracker(base, Refiner.from_pretrained(args.weights))  # same initialize/track
    seq = Path(args.sequence)
    files = sorted((seq / "img").glob("*.jpg")) or sorted(seq.glob("*.jpg"))
    gt = np.loadtxt(next(seq.glob("groundtruth*.txt")), delimiter=",")
    for i, path in enumerate(files):
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)  # pytracking takes RGB
        if i == 0:
            tracker.initialize(image, {"init_bbox": list(gt[0])})
        else:
            out = tracker.track(image)  # out['target_bbox'] refined; pos/target_sz written back
            print(i, [round(v, 1) for v in out["target_bbox"]])


if __name__ == "__main__":
    main()
