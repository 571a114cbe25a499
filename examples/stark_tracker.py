"""Refine a STARK / OSTrack / MixFormer tracker (``state = [x, y, w, h]``). Needs the tracker's
repository on PYTHONPATH with its checkpoint set up as that repository describes:

    PYTHONPATH=/path/to/Stark python examples/stark_tracker.py --tracker stark_st --param baseline --sequence ../shared/data/sequences/otb/Crossing [--mask-only]

``--mask-only`` is the STARK/MixFormer VOT use: keep the tracker's box, add the refiner's mask.
"""

from __future__ import annotations

import argparse
import importlib
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
    ap.add_argument("--tracker", default="stark_st")
    ap.add_argument("--param", default="baseline")
    ap.add_argument("--sequence", required=True)
    ap.add_argument("--mask-only", action="store_true")
    args = ap.parse_args()
    try:
        params = importlib.import_module(f"lib.test.parameter.{args.tracker}").parameters(args.param)
        tracker_class = importlib.import_module(f"lib.test.tracker.{args.tracker}").get_tracker_class()
    except ImportError:
        sys.exit("the STARK/OSTrack/MixFormer repository is not importable: put it on PYTHONPATH")
    base = tracker_class(params, "refine-example")

    tracker = RefinedTracker(
        base, Refiner.from_pretrained(args.weights), kind="stark", write_back=not args.mask_only, mask=args.mask_only
    )
    seq = Path(args.sequence)
    files = sorted((seq / "img").glob("*.jpg")) or sorted(seq.glob("*.jpg"))
    gt = np.loadtxt(next(seq.glob("groundtruth*.txt")), delimiter=",")
    for i, path in enumerate(files):
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)  # RGB
        if i == 0:
            tracker.initialize(image, {"init_bbox": list(gt[0])})
        else:
            out = tracker.track(image)
            print(i, [round(v, 1) for v in out["target_bbox"]], "mask" if "segmentation" in out else "")


if __name__ == "__main__":
    main()
