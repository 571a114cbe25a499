"""Refine a pysot tracker (SiamRPN++, SiamMask, SiamRPN-LT). Needs a pysot checkout on PYTHONPATH
(pysot is not on the package index) plus its config and snapshot:

    PYTHONPATH=/path/to/pysot python examples/pysot_tracker.py --config experiments/siamrpn_r50_l234_dwxcorr/config.yaml --snapshot model.pth \
        --sequence ../shared/data/sequences/otb/Crossing
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
    ap.add_argument("--config", required=True)
    ap.add_argument("--snapshot", required=True)
    ap.add_argument("--sequence", required=True, help="a folder of .jpg frames (img/ or flat) with a groundtruth file")
    args = ap.parse_args()
    try:
        import torch
        from pysot.core.config import cfg
        from pysot.models.model_builder import ModelBuilder
        from pysot.tracker.tracker_builder import build_tracker
    except ImportError:
        sys.exit("pysot is not importable: clone github.com/STVIR/pysot, build it, and put it on PYTHONPATH")

    cfg.merge_from_file(args.config)
    model = ModelBuilder()
    model.load_state_dict(torch.load(args.snapshot, map_location="cpu"))
    base = build_tracker(model.eval())

    tracker = RefinedTracker(base, Refiner.from_pretrained(args.weights))  # same init/track as pysot
    seq = Path(args.sequence)
    files = sorted((seq / "img").glob("*.jpg")) or sorted(seq.glob("*.jpg"))
    gt = np.loadtxt(next(seq.glob("groundtruth*.txt")), delimiter=",")
    for i, path in enumerate(files):
        frame = cv2.imread(str(path))  # BGR, as pysot expects
        if i == 0:
            tracker.init(frame, list(gt[0]))
        else:
            out = tracker.track(frame)  # out['bbox'] refined, out['bbox_base'] pysot's own
            print(i, [round(v, 1) for v in out["bbox"]], round(float(out["best_score"]), 3))


if __name__ == "__main__":
    main()
