"""CPU latency of ``Refiner.refine`` against a bare eager ResNet-34 conv1..layer3 forward.

Usage: python benchmarks/latency.py [--weights PATH] [--reps 40] [--threads 2]

All measurements are interleaved in one process (each round runs every variant once), so background
load affects them alike; compare the ratio column, not absolute times, across machines.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", default=str(SHARED / "parity/ar34_random.pth.tar"))
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import cv2

    from alpharefine_sdk import Refiner
    from alpharefine_sdk.nn.resnet import ResNet34Trunk

    seq = SHARED / "data/sequences/lasot/soapbox"
    frame0 = cv2.cvtColor(cv2.imread(str(seq / "img/00000001.jpg")), cv2.COLOR_BGR2RGB)
    frame = cv2.cvtColor(cv2.imread(str(seq / "img/00000021.jpg")), cv2.COLOR_BGR2RGB)
    gt = np.loadtxt(seq / "groundtruth.txt", delimiter=",")
    refiner = Refiner.from_pretrained(args.weights, device="cpu")
    refiner.initialize(frame0, gt[0])

    backbone = ResNet34Trunk().eval()
    backbone.load_state_dict(
        {
            k[len("feature_extractor.") :]: v
            for k, v in refiner.net.state_dict().items()
            if k.startswith("feature_extractor.")
        }
    )
    x = torch.randn(1, 3, 256, 256)

    def bare():
        with torch.no_grad():
            backbone(x, ("layer3",))

    variants = {
        "bare ResNet-34 conv1..layer3 forward (eager)": bare,
        "refine(frame, box): box only": lambda: refiner.refine(frame, gt[20]),
        "refine(frame, box, mask=True): box + mask": lambda: refiner.refine(frame, gt[20], mask=True),
    }
    times = {k: [] for k in variants}
    for _ in range(args.warmup):
        for fn in variants.values():
            fn()
    for _ in range(args.reps):
        for k, fn in variants.items():
            t = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t) * 1000)
    base = statistics.median(times[next(iter(variants))])
    print(
        f"torch {torch.__version__}, {args.threads} threads, frame {frame.shape[1]}x{frame.shape[0]}, "
        f"box {gt[20][2]:.0f}x{gt[20][3]:.0f}, {args.reps} interleaved reps, weights {Path(args.weights).name}"
    )
    print("| call | median ms | p10-p90 ms | ratio to backbone |")
    print("|---|---:|---:|---:|")
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"| {k} | {med:.1f} | {np.percentile(ts, 10):.1f}-{np.percentile(ts, 90):.1f} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
