"""Refine a pysot tracker (SiamRPN, SiamRPN++, SiamMask, SiamRPN-LT). Needs a pysot checkout on
PYTHONPATH (pysot is not on the package index) and one of its experiment configs; its snapshot
is optional (without one the network has random weights: a protocol check, not a tracker):

    PYTHONPATH=/path/to/pysot python examples/pysot_tracker.py \\
        --config experiments/siamrpn_r50_l234_dwxcorr/config.yaml --snapshot model.pth

Runs on the GPU when there is one, else on the CPU (pysot's config defaults to CUDA).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from alpharefine_sdk import RefinedTracker, Refiner

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "Crossing"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--weights",
        default=None,
        help="model folder, original .pth.tar or Hub repo id (default: the packaged default model)",
    )
    ap.add_argument("--config", required=True, help="a pysot experiment config.yaml")
    ap.add_argument("--snapshot", default=None, help="pysot weights (model.pth); default: random weights")
    ap.add_argument(
        "--sequence",
        default=str(SAMPLE),
        help="a folder of .jpg frames (img/ or flat) with a groundtruth file (default: the sample data/Crossing)",
    )
    ap.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    args = ap.parse_args()
    try:
        import torch
        from pysot.core.config import cfg
        from pysot.models.model_builder import ModelBuilder
        from pysot.tracker.tracker_builder import build_tracker
    except ImportError:
        sys.exit("pysot is not importable: clone github.com/STVIR/pysot, build it, and put it on PYTHONPATH")

    cfg.merge_from_file(args.config)
    cfg.CUDA = torch.cuda.is_available()  # pysot defaults to CUDA and fails on CPU-only machines
    device = torch.device("cuda" if cfg.CUDA else "cpu")
    model = ModelBuilder()
    if args.snapshot:
        model.load_state_dict(torch.load(args.snapshot, map_location="cpu", weights_only=True))
    else:
        print("no --snapshot: pysot runs with random weights (protocol check only)")
    base = build_tracker(model.eval().to(device))

    tracker = RefinedTracker(base, Refiner.from_pretrained(args.weights))  # same init/track as pysot
    seq = Path(args.sequence)
    files = sorted((seq / "img").glob("*.jpg")) or sorted(seq.glob("*.jpg"))
    gt = np.loadtxt(next(seq.glob("groundtruth*.txt")), delimiter=",")
    for i, path in enumerate(files[: args.max_frames]):
        frame = cv2.imread(str(path))  # BGR, as pysot expects
        if i == 0:
            tracker.init(frame, list(gt[0]))
        else:
            out = tracker.track(frame)  # out['bbox'] refined, out['bbox_base'] pysot's own
            print(i, [round(v, 1) for v in out["bbox"]], round(float(out["best_score"]), 3))


if __name__ == "__main__":
    main()
